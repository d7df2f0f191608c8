// SPDX-License-Identifier: Apache-2.0
/**
 * The cluster-backed collaborators of the upload path: a SubjectAccessReview authorizer and a
 * TokenReview authenticator for the token API, and the resolver the proxy uses to find a PVC's
 * upload server (Service `cdi-upload-<pvc>`, ready when the PVC's `storage.pod.ready` is "true").
 * The upload server is addressed by its Service's DNS name (`dns`, as CDI does) or by the
 * Service's clusterIP (`cluster-ip`, for a proxy that cannot resolve cluster DNS, such as one
 * running outside the cluster network); TLS is checked against the DNS name either way.
 */
import type { IncomingMessage } from 'node:http';
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
} from '@kubernetes/client-node';
import { Annotations, UPLOAD_SERVER_PORT, uploadServiceName } from '../common/contract.js';
import { CdiError, ErrorCodes, errorMessage } from '../common/errors.js';
import type { Authenticator, Authorizer, RequestUser } from './apiserver.js';
import type { UploadBackend, UploadResolver } from './proxy.js';

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

/** The cluster's front-proxy trust, as every aggregated API server reads it. */
export interface RequestHeaderAuthentication {
  /** The CA that signs the aggregator's client certificate. */
  readonly clientCaPem: string;
  /** Common names that certificate may have (an empty list accepts every name from that CA). */
  readonly allowedNames: readonly string[];
}

/**
 * Reads `kube-system/extension-apiserver-authentication` (`requestheader-client-ca-file`,
 * `requestheader-allowed-names`); undefined when the cluster publishes no front-proxy CA.
 */
export async function readRequestHeaderAuthentication(
  kc: KubeConfig,
): Promise<RequestHeaderAuthentication | undefined> {
  const core = kc.makeApiClient(CoreV1Api);
  let data: Record<string, string>;
  try {
    const cm = await core.readNamespacedConfigMap({
      namespace: 'kube-system',
      name: 'extension-apiserver-authentication',
    });
    data = cm.data ?? {};
  } catch (err) {
    if (httpCode(err) === 404) return undefined;
    throw kubeError('cannot read kube-system/extension-apiserver-authentication', err);
  }
  const clientCaPem = data['requestheader-client-ca-file'];
  if (clientCaPem === undefined || clientCaPem === '') return undefined;
  let allowedNames: string[] = [];
  try {
    const parsed: unknown = JSON.parse(data['requestheader-allowed-names'] ?? '[]');
    if (Array.isArray(parsed)) allowedNames = parsed.filter((n) => typeof n === 'string');
  } catch {
    throw new CdiError(
      ErrorCodes.InvalidConfig,
      'requestheader-allowed-names in kube-system/extension-apiserver-authentication is not a JSON list',
    );
  }
  return { clientCaPem, allowedNames };
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

/** How the proxy addresses upload servers (`--upload-server-address`). */
export const UploadServerAddressModes = ['dns', 'cluster-ip'] as const;
/** One of {@link UploadServerAddressModes}. */
export type UploadServerAddressMode = (typeof UploadServerAddressModes)[number];

/** Options of {@link kubeUploadResolver}. */
export interface KubeUploadResolverOptions {
  /** DNS suffix after the namespace in `dns` mode (default `svc`). */
  readonly clusterDomain?: string;
  /** `dns` (default): `https://cdi-upload-<pvc>.<ns>.<domain>:8443`; `cluster-ip`: the Service's clusterIP. */
  readonly address?: UploadServerAddressMode;
}

/** Resolves a PVC's upload server through the Kubernetes API (CDI's `urlResolver` + `uploadPossible`). */
export function kubeUploadResolver(
  kc: KubeConfig,
  options: KubeUploadResolverOptions = {},
): UploadResolver {
  const core = kc.makeApiClient(CoreV1Api);
  const domain = options.clusterDomain ?? 'svc';
  const byClusterIp = options.address === 'cluster-ip';
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
    const ready = annotations[Annotations.PodReady] === 'true';
    const extra = contentType === undefined ? {} : { contentType };
    const service = uploadServiceName(t.pvc);
    if (!byClusterIp) {
      return {
        url: `https://${service}.${t.namespace}.${domain}:${UPLOAD_SERVER_PORT}`,
        ready,
        ...extra,
      };
    }
    return clusterIpBackend(core, { ...t, service, ready }, extra);
  };
}

/**
 * The backend at the Service's clusterIP, checked as `<service>.<ns>.svc`; not ready while the
 * PVC is not, or the Service does not exist yet (the proxy polls, as for a PVC not ready).
 */
async function clusterIpBackend(
  core: CoreV1Api,
  t: { readonly namespace: string; readonly service: string; readonly ready: boolean },
  extra: { readonly contentType?: string },
): Promise<UploadBackend> {
  const servername = `${t.service}.${t.namespace}.svc`;
  const ip = t.ready ? await serviceClusterIp(core, t.namespace, t.service) : undefined;
  if (ip === undefined)
    return {
      url: `https://${servername}:${UPLOAD_SERVER_PORT}`,
      ready: false,
      servername,
      ...extra,
    };
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return { url: `https://${host}:${UPLOAD_SERVER_PORT}`, ready: true, servername, ...extra };
}

/** The Service's clusterIP; undefined while it does not exist or has none (headless). */
async function serviceClusterIp(
  core: CoreV1Api,
  namespace: string,
  name: string,
): Promise<string | undefined> {
  try {
    const svc = await core.readNamespacedService({ name, namespace });
    const ip = svc.spec?.clusterIP;
    return ip === undefined || ip === '' || ip === 'None' ? undefined : ip;
  } catch (err) {
    if (httpCode(err) === 404) return undefined;
    throw kubeError(`cannot read Service ${namespace}/${name}`, err);
  }
}
