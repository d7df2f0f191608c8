// SPDX-License-Identifier: Apache-2.0
/**
 * The DataVolume webhook's cluster-backed collaborators: SubjectAccessReviews for the requesting
 * user (with subresource and name, as CDI asks) and DataSource reads.
 */
import { AuthorizationV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { CryptoKey } from 'jose';
import { httpCode, kubeError } from '../protocol/kube-client.js';
import type { AdmissionDeps } from './datavolume-mutate.js';

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
}

/** {@link AdmissionDeps} talking to the cluster of `kc`. */
export function kubeAdmissionDeps(kc: KubeConfig, signingKey: CryptoKey): AdmissionDeps {
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    signingKey,
    async accessReview(user, a) {
      try {
        const review = await authz.createSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user: user.name,
              groups: [...user.groups],
              ...(user.uid === undefined ? {} : { uid: user.uid }),
              ...(user.extra === undefined
                ? {}
                : {
                    extra: Object.fromEntries(
                      Object.entries(user.extra).map(([k, v]) => [k, [...v]]),
                    ),
                  }),
              resourceAttributes: {
                namespace: a.namespace,
                verb: a.verb,
                group: a.group,
                resource: a.resource,
                ...(a.subresource === undefined ? {} : { subresource: a.subresource }),
                name: a.name,
              },
            },
          },
        });
        const reason = review.status?.reason;
        return {
          allowed: review.status?.allowed === true,
          ...(reason === undefined ? {} : { reason }),
        };
      } catch (err) {
        throw kubeError('SubjectAccessReview failed', err);
      }
    },
    async dataSourceClaim(namespace, name) {
      let ds: unknown;
      try {
        ds = await custom.getNamespacedCustomObject({
          group: 'cdi.kubevirt.io',
          version: 'v1beta1',
          namespace,
          plural: 'datasources',
          name,
        });
      } catch (err) {
        if (httpCode(err) === 404) return { found: false };
        throw kubeError(`cannot read DataSource ${namespace}/${name}`, err);
      }
      const pvc = rec(rec(rec(ds)['spec'])['source'])['pvc'];
      if (pvc === undefined) return { found: true };
      const p = rec(pvc);
      return {
        found: true,
        pvc: {
          ...(typeof p['namespace'] === 'string' ? { namespace: p['namespace'] } : {}),
          ...(typeof p['name'] === 'string' ? { name: p['name'] } : {}),
        },
      };
    },
  };
}
