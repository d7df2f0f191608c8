// SPDX-License-Identifier: Apache-2.0
/**
 * The cluster-backed collaborators of the upload path: a SubjectAccessReview authorizer and a
 * TokenReview authenticator for the token API, and the resolver the proxy uses to find a PVC's
 * upload server (Service `cdi-upload-<pvc>`, ready when the PVC's `storage.pod.ready` is "true").
 */
import type { IncomingMessage } from 'node:http';
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
} from '@kubernetes/client-node';
import { Annotations } from '../common/contract.js';
import { CdiError, ErrorCodes, errorMessage } from '../common/errors.js';
import type { Authenticator, Authorizer, RequestUser } from './apiserver.js';
import type { UploadResolver } from './proxy.js';

/** Loads a kubeconfig file, or the in-cluster service account when no file is given. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file === undefined) kc.loadFromCluster();
  else kc.loadFromFile(file);
  return kc;
}

function kubeError(what: string, err: unknown): CdiError {
  return new CdiError(ErrorCodes.KubeApi, `${what}: ${errorMessage(err)}`, {
    cause: err,
    retryable: true,
  });
}

function httpCode(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number')
    return err.code;
  return undefined;
}

/** Asks the API server with a SubjectAccessReview (CDI's authorizer). */
export function subjectAccessReviewAuthorizer(kc: KubeConfig): Authorizer {
  const api = kc.makeApiClient(AuthorizationV1Api);
  return async (q) => {
    try {
      const review = await api.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: q.user.name,
            groups: [...q.user.groups],
            ...(q.user.uid === undefined ? {} : { uid: q.user.uid }),
            ...(q.user.extra === undefined
              ? {}
              : {
                  extra: Object.fromEntries(
                    Object.entries(q.user.extra).map(([k, v]) => [k, [...v]]),
                  ),
                }),
            resourceAttributes: {
              namespace: q.namespace,
              verb: q.verb,
              group: q.group,
              resource: q.resource,
            },
          },
        },
      });
      const allowed = review.status?.allowed === true;
      const reason = review.status?.reason;
      return { allowed, ...(reason === undefined ? {} : { reason }) };
    } catch (err) {
      throw kubeError('SubjectAccessReview failed', err);
    }
  };
}

/**
 * The aggregator's headers first; else a bearer token checked with a TokenReview (a client that
 * talks to the token API directly).
 */
export function tokenReviewAuthenticator(kc: KubeConfig, headers: Authenticator): Authenticator {
  const api = kc.makeApiClient(AuthenticationV1Api);
  return async (req: IncomingMessage): Promise<RequestUser | undefined> => {
    const fromHeaders = await headers(req);
    if (fromHeaders !== undefined) return fromHeaders;
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (m?.[1] === undefined) return undefined;
    try {
      const review = await api.createTokenReview({
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token: m[1] },
        },
      });
      const user = review.status?.user;
      if (review.status?.authenticated !== true || user?.username === undefined) return undefined;
      return {
        name: user.username,
        groups: user.groups ?? [],
        ...(user.uid === undefined ? {} : { uid: user.uid }),
        ...(user.extra === undefined ? {} : { extra: user.extra }),
      };
    } catch (err) {
      throw kubeError('TokenReview failed', err);
    }
  };
}

/** CDI's upload Service name: `cdi-upload-<pvc>`, dots to dashes, at most 63 characters. */
export function uploadServiceName(pvc: string): string {
  return `cdi-upload-${pvc}`.replace(/\./g, '-').slice(0, 63).replace(/-+$/, '');
}

/** Port of upload servers. */
export const UPLOAD_SERVER_PORT = 8443;

/** Resolves a PVC's upload server through the Kubernetes API (CDI's `urlResolver` + `uploadPossible`). */
export function kubeUploadResolver(
  kc: KubeConfig,
  options: { readonly clusterDomain?: string } = {},
): UploadResolver {
  const core = kc.makeApiClient(CoreV1Api);
  const domain = options.clusterDomain ?? 'svc';
  return async (t) => {
    let annotations: Record<string, string>;
    try {
      const pvc = await core.readNamespacedPersistentVolumeClaim({
        name: t.pvc,
        namespace: t.namespace,
      });
      annotations = pvc.metadata?.annotations ?? {};
    } catch (err) {
      if (httpCode(err) === 404)
        throw new CdiError(
          ErrorCodes.UploadNotReady,
          `rejecting Upload Request for PVC ${t.pvc} that doesn't exist`,
          {
            httpStatus: 503,
          },
        );
      throw kubeError(`cannot read PVC ${t.namespace}/${t.pvc}`, err);
    }
    if (!(Annotations.UploadTarget in annotations))
      throw new CdiError(ErrorCodes.UploadNotReady, `PVC ${t.pvc} is not an upload target`, {
        httpStatus: 503,
      });
    if (annotations[Annotations.PodPhase] === 'Succeeded')
      throw new CdiError(
        ErrorCodes.UploadNotReady,
        `rejecting Upload Request for PVC ${t.pvc} that already finished uploading`,
        {
          httpStatus: 503,
        },
      );
    const contentType = annotations[Annotations.ContentType];
    if (
      contentType !== undefined &&
      contentType !== '' &&
      contentType !== 'kubevirt' &&
      contentType !== 'archive'
    )
      throw new CdiError(
        ErrorCodes.UploadNotReady,
        `rejecting Upload Request for PVC ${t.pvc}: upload content-type ${contentType} is invalid`,
        {
          httpStatus: 503,
        },
      );
    return {
      url: `https://${uploadServiceName(t.pvc)}.${t.namespace}.${domain}:${UPLOAD_SERVER_PORT}`,
      ready: annotations[Annotations.PodReady] === 'true',
      ...(contentType === undefined ? {} : { contentType }),
    };
  };
}
