// SPDX-License-Identifier: Apache-2.0
/**
 * In-cluster configuration as a cluster gives it to every pod:
 * - the ServiceAccount admission plugin's `kube-api-access-<suffix>` projected volume (a bound
 *   token of the pod's ServiceAccount, `ca.crt` from the ConfigMap `kube-root-ca.crt`, and the
 *   pod's namespace), mounted read-only at `/var/run/secrets/kubernetes.io/serviceaccount` in
 *   every container, unless `automountServiceAccountToken` (pod's, else the account's) is false;
 * - the root-CA publisher's `kube-root-ca.crt` ConfigMap in every namespace;
 * - the `default/kubernetes` Service, whose Endpoints lead to the API server, and which the
 *   kubelet names in `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` (pod-env.ts).
 */
import { randomBytes } from 'node:crypto';
import { Types } from './cluster.js';
import type { AdmissionRequest, ObjectApi } from './object-api.js';
import { getPath, isRecord, str } from './object.js';

/** Where client libraries look for the in-cluster token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The ConfigMap holding the cluster's CA in every namespace. */
export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';
/** The bound token's lifetime the admission plugin asks for (kube's 3607 s). */
const TOKEN_SECONDS = 3607;

function suffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(5)].map((b) => alphabet[b % alphabet.length] ?? 'x').join('');
}

/** The projected volume of the ServiceAccount admission plugin. */
export function apiAccessVolume(name: string): Record<string, unknown> {
  return {
    name,
    projected: {
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: { expirationSeconds: TOKEN_SECONDS, path: 'token' } },
        { configMap: { name: ROOT_CA_CONFIGMAP, items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        {
          downwardAPI: {
            items: [
              {
                path: 'namespace',
                fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' },
              },
            ],
          },
        },
      ],
    },
  };
}

function mountsDir(container: Record<string, unknown>): boolean {
  const mounts = container['volumeMounts'];
  return (
    Array.isArray(mounts) &&
    mounts.some(
      (m) => isRecord(m) && str(m['mountPath']).replace(/\/+$/, '') === SERVICE_ACCOUNT_DIR,
    )
  );
}

/** The admission hook adding the volume and mounts to a new pod (after defaulting). */
export function serviceAccountAdmission(api: ObjectApi): (req: AdmissionRequest) => void {
  return (req) => {
    if (req.operation !== 'create') return;
    const spec = req.object['spec'];
    if (!isRecord(spec)) return;
    const saName = str(spec['serviceAccountName'], 'default');
    const saType = api.types.get(Types.ServiceAccounts);
    const sa =
      saType === undefined
        ? undefined
        : api.find(saType, req.object.metadata.namespace ?? '', saName);
    const automount = spec['automountServiceAccountToken'] ?? sa?.['automountServiceAccountToken'];
    if (automount === false) return;
    const containers = ['initContainers', 'containers'].flatMap((f) =>
      Array.isArray(spec[f]) ? spec[f].filter(isRecord) : [],
    );
    if (containers.some(mountsDir)) return;
    const volume = `kube-api-access-${suffix()}`;
    spec['volumes'] = [
      ...(Array.isArray(spec['volumes']) ? (spec['volumes'] as unknown[]) : []),
      apiAccessVolume(volume),
    ];
    for (const c of containers) {
      const mounts: unknown[] = Array.isArray(c['volumeMounts']) ? c['volumeMounts'] : [];
      c['volumeMounts'] = [
        ...mounts,
        { name: volume, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true },
      ];
    }
  };
}

/** Publishes `kube-root-ca.crt` (the API server's CA) into every namespace, as it appears. */
export class RootCaPublisher {
  #unsubscribe: (() => void) | undefined;

  constructor(
    private readonly api: ObjectApi,
    private readonly caPem: string,
  ) {}

  start(): void {
    this.#unsubscribe = this.api.store.subscribe((e) => {
      if (e.typeKey === Types.Namespaces) setImmediate(() => this.#sync());
    });
    this.#sync();
  }

  stop(): void {
    this.#unsubscribe?.();
  }

  #sync(): void {
    const nsType = this.api.types.get(Types.Namespaces);
    const cmType = this.api.types.get(Types.ConfigMaps);
    if (nsType === undefined || cmType === undefined) return;
    for (const ns of this.api.list(nsType, undefined).items) {
      const name = ns.metadata.name ?? '';
      if (ns.metadata.deletionTimestamp !== undefined) continue;
      if (this.api.find(cmType, name, ROOT_CA_CONFIGMAP) !== undefined) continue;
      this.api.create(cmType, name, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: ROOT_CA_CONFIGMAP, namespace: name },
        data: { 'ca.crt': this.caPem },
      });
    }
  }
}

/**
 * Creates `default/kubernetes` (its clusterIP is the first of the service range) with Endpoints
 * pointing at the API server's `apiPort` on 127.0.0.1; returns the clusterIP.
 */
export function createKubernetesService(api: ObjectApi): string {
  const svcType = api.types.get(Types.Services);
  if (svcType === undefined) throw new Error('services type missing');
  const svc = api.create(svcType, 'default', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'kubernetes',
      namespace: 'default',
      labels: { component: 'apiserver', provider: 'kubernetes' },
    },
    spec: { ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }] },
  });
  return str(getPath(svc, ['spec', 'clusterIP']));
}

/** Points `default/kubernetes`'s Endpoints at the API server listening on 127.0.0.1:`port`. */
export function publishApiServerEndpoints(api: ObjectApi, port: number): void {
  const epType = api.types.get(Types.Endpoints);
  if (epType === undefined) return;
  api.create(epType, 'default', {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'kubernetes', namespace: 'default' },
    subsets: [
      { addresses: [{ ip: '127.0.0.1' }], ports: [{ name: 'https', port, protocol: 'TCP' }] },
    ],
  });
}
