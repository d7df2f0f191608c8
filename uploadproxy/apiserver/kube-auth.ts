// SPDX-License-Identifier: Apache-2.0
/**
 * The token API's cluster-backed collaborators: the front-proxy trust every aggregated API server
 * reads, a TokenReview authenticator and a SubjectAccessReview authorizer.
 */
import type { IncomingMessage } from 'node:http';
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { httpCode, kubeError } from '../protocol/kube-client.js';
import type { Authenticator, Authorizer, RequestUser } from './token-api.js';

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
