// SPDX-License-Identifier: Apache-2.0
/**
 * The cluster's state and built-in admission: the store, the type registry (CRDs register their
 * types as they are created), defaulting of pods, PVCs, namespaces and services the way the
 * corresponding Kubernetes admission plugins and registries do, and the objects every cluster
 * starts with (namespaces, the node, the two StorageClasses).
 */
import { randomInt } from 'node:crypto';
import { ApiStatusError, StatusReasons } from './api-errors.js';
import { ObjectApi, type AdmissionRequest } from './object-api.js';
import { clone, getPath, isRecord, type JsonObject, type KObject } from './object.js';
import {
  builtinTypes,
  TypeRegistry,
  typeFromCrd,
  typeKey,
  type ResourceType,
} from './resources.js';
import { ObjectStore, WatchTypes } from './store.js';

/** The finalizer a CRD carries until its objects are gone (the collector removes it). */
export const CRD_CLEANUP_FINALIZER = 'customresourcecleanup.apiextensions.k8s.io';

/** The one node. */
export const NODE_NAME = 'sandbox-node';
/** The provisioner name of both StorageClasses. */
export const PROVISIONER = 'sandbox.cdi.kubevirt.io/hostpath';
/** Annotation marking the default StorageClass. */
export const DEFAULT_CLASS_ANNOTATION = 'storageclass.kubernetes.io/is-default-class';
/** Finalizer protecting PVCs in use. */
export const PVC_PROTECTION = 'kubernetes.io/pvc-protection';

/** Type keys used by the sandbox's controllers. */
export const Types = {
  Pods: typeKey('', 'pods'),
  Pvcs: typeKey('', 'persistentvolumeclaims'),
  Pvs: typeKey('', 'persistentvolumes'),
  Services: typeKey('', 'services'),
  Namespaces: typeKey('', 'namespaces'),
  Secrets: typeKey('', 'secrets'),
  ConfigMaps: typeKey('', 'configmaps'),
  ServiceAccounts: typeKey('', 'serviceaccounts'),
  StorageClasses: typeKey('storage.k8s.io', 'storageclasses'),
  Crds: typeKey('apiextensions.k8s.io', 'customresourcedefinitions'),
  Deployments: typeKey('apps', 'deployments'),
  ReplicaSets: typeKey('apps', 'replicasets'),
  Endpoints: typeKey('', 'endpoints'),
  EndpointSlices: typeKey('discovery.k8s.io', 'endpointslices'),
} as const;

/** Allocates addresses in one /16 of 127.0.0.0/8 (pods and services each get their own). */
export class AddressPool {
  #next = 1;
  constructor(private readonly second: number) {}
  /** The next unused address. */
  allocate(): string {
    for (;;) {
      const n = this.#next++;
      const c = (n >> 8) & 255;
      const d = n & 255;
      if (d !== 0 && d !== 255) return `127.${this.second}.${c}.${d}`;
    }
  }
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function defaultPod(req: AdmissionRequest): void {
  if (req.operation !== 'create') return;
  const pod = req.object;
  const spec = isRecord(pod['spec']) ? pod['spec'] : {};
  pod['spec'] = spec;
  spec['restartPolicy'] ??= 'Always';
  spec['terminationGracePeriodSeconds'] ??= 30;
  spec['dnsPolicy'] ??= 'ClusterFirst';
  spec['schedulerName'] ??= 'default-scheduler';
  spec['serviceAccountName'] ??= 'default';
  for (const field of ['containers', 'initContainers']) {
    const list = spec[field];
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      if (!isRecord(c)) continue;
      c['terminationMessagePath'] ??= '/dev/termination-log';
      c['terminationMessagePolicy'] ??= 'File';
      c['imagePullPolicy'] ??= 'IfNotPresent';
    }
  }
  if (!Array.isArray(spec['containers']) || spec['containers'].length === 0) {
    throw new ApiStatusError(
      422,
      StatusReasons.Invalid,
      `Pod "${pod.metadata.name ?? ''}" is invalid: spec.containers: Required value`,
    );
  }
  pod['status'] = { phase: 'Pending', qosClass: 'BestEffort' };
}

/** Builds the cluster state with its admission hooks and CRD handling. */
export function createCluster(): {
  store: ObjectStore;
  types: TypeRegistry;
  api: ObjectApi;
  servicePool: AddressPool;
  podPool: AddressPool;
} {
  const store = new ObjectStore();
  const types = new TypeRegistry(builtinTypes());
  const api = new ObjectApi(store, types);
  // Each sandbox takes its own random pair of /16 blocks of 127.0.0.0/8, so that sandboxes
  // running side by side (vitest forks) do not hand out the same pod or service address.
  const block = 16 + 2 * randomInt(0, 110);
  const podPool = new AddressPool(block);
  const servicePool = new AddressPool(block + 1);

  api.addAdmission(Types.Pods, defaultPod);
  api.addAdmission(Types.Pvcs, (req) => {
    if (req.operation !== 'create') return;
    const pvc = req.object;
    const spec = isRecord(pvc['spec']) ? pvc['spec'] : {};
    pvc['spec'] = spec;
    if (spec['storageClassName'] === undefined) {
      const sc = store
        .list(Types.StorageClasses)
        .find((c) => c.metadata.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true');
      if (sc !== undefined) spec['storageClassName'] = sc.metadata.name ?? '';
    }
    spec['volumeMode'] ??= 'Filesystem';
    const fin = pvc.metadata.finalizers ?? [];
    if (!fin.includes(PVC_PROTECTION)) pvc.metadata.finalizers = [...fin, PVC_PROTECTION];
    pvc['status'] = { phase: 'Pending' };
  });
  api.addAdmission(Types.Secrets, (req) => {
    // The API server folds write-only stringData into data.
    const secret = req.object;
    const data = isRecord(secret['data']) ? { ...secret['data'] } : {};
    const stringData = secret['stringData'];
    if (isRecord(stringData)) {
      for (const [k, v] of Object.entries(stringData))
        data[k] = Buffer.from(String(v)).toString('base64');
    }
    delete secret['stringData'];
    if (Object.keys(data).length > 0) secret['data'] = data;
    secret['type'] ??= 'Opaque';
  });
  api.addAdmission(Types.Pvs, (req) => {
    if (req.operation === 'create' && getPath(req.object, ['status', 'phase']) === undefined) {
      req.object['status'] = { phase: 'Available' };
    }
  });
  api.addAdmission(Types.Namespaces, (req) => {
    if (req.operation === 'create') {
      req.object['spec'] = { finalizers: ['kubernetes'] };
      req.object['status'] = { phase: 'Active' };
    }
  });
  api.addAdmission(Types.Services, (req) => {
    const svc = req.object;
    const spec = isRecord(svc['spec']) ? svc['spec'] : {};
    svc['spec'] = spec;
    if (req.operation === 'update') {
      const old = getPath(req.old, ['spec', 'clusterIP']);
      if (typeof old === 'string') spec['clusterIP'] = old;
      return;
    }
    spec['type'] ??= 'ClusterIP';
    if (spec['type'] !== 'ExternalName' && spec['clusterIP'] !== 'None')
      spec['clusterIP'] = servicePool.allocate();
    if (typeof spec['clusterIP'] === 'string') spec['clusterIPs'] = [spec['clusterIP']];
    if (Array.isArray(spec['ports'])) {
      for (const p of spec['ports']) {
        if (!isRecord(p)) continue;
        p['protocol'] ??= 'TCP';
        p['targetPort'] ??= p['port'] ?? 0;
      }
    }
    svc['status'] = { loadBalancer: {} };
  });
  api.addAdmission(Types.Crds, (req) => {
    const type = typeFromCrd(req.object as unknown as JsonObject);
    if (typeof type === 'string') {
      throw new ApiStatusError(
        422,
        StatusReasons.Invalid,
        `CustomResourceDefinition.apiextensions.k8s.io "${req.object.metadata.name ?? ''}" is invalid: ${type}`,
      );
    }
    const expected = `${type.plural}.${type.group}`;
    if (req.object.metadata.name !== expected) {
      throw new ApiStatusError(
        422,
        StatusReasons.Invalid,
        `CustomResourceDefinition.apiextensions.k8s.io "${req.object.metadata.name ?? ''}" is invalid: metadata.name: Invalid value: must be spec.names.plural+"."+spec.group`,
      );
    }
    if (req.operation === 'create' || getPath(req.object, ['status', 'conditions']) === undefined) {
      req.object['status'] = crdStatus(req.object, type);
    }
    // The apiextensions server's: the CRD stays (terminating) until its objects are deleted.
    const fin = req.object.metadata.finalizers ?? [];
    if (req.operation === 'create' && !fin.includes(CRD_CLEANUP_FINALIZER))
      req.object.metadata.finalizers = [...fin, CRD_CLEANUP_FINALIZER];
  });
  // Types follow their CRDs; objects of a deleted CRD go with it.
  store.subscribe((e) => {
    if (e.typeKey !== Types.Crds) return;
    const type = typeFromCrd(e.object as unknown as JsonObject);
    if (typeof type === 'string') return;
    if (e.type === WatchTypes.Deleted) {
      types.remove(type.group, type.plural);
      setImmediate(() => store.dropType(typeKey(type.group, type.plural)));
    } else types.add(type);
  });
  bootstrap(api);
  return { store, types, api, servicePool, podPool };
}

function crdStatus(crd: KObject, type: ResourceType): JsonObject {
  const names = getPath(crd, ['spec', 'names']);
  const t = now();
  return {
    conditions: [
      {
        type: 'NamesAccepted',
        status: 'True',
        reason: 'NoConflicts',
        message: 'no conflicts found',
        lastTransitionTime: t,
      },
      {
        type: 'Established',
        status: 'True',
        reason: 'InitialNamesAccepted',
        message: 'the initial names have been accepted',
        lastTransitionTime: t,
      },
    ],
    acceptedNames: isRecord(names) ? (clone(names) as JsonObject) : {},
    storedVersions: [type.versions[0] ?? ''],
  };
}

function mustType(api: ObjectApi, apiVersion: string, kind: string): ResourceType {
  const t = api.typeOf(apiVersion, kind);
  if (t === undefined) throw new Error(`no type for ${kind}`);
  return t;
}

function bootstrap(api: ObjectApi): void {
  const ns = mustType(api, 'v1', 'Namespace');
  for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    api.create(ns, '', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }
  api.create(mustType(api, 'v1', 'Node'), '', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: NODE_NAME,
      labels: { 'kubernetes.io/hostname': NODE_NAME, 'kubernetes.io/os': 'linux' },
    },
  });
  const node = mustType(api, 'v1', 'Node');
  const n = api.get(node, '', NODE_NAME);
  api.update(
    node,
    '',
    NODE_NAME,
    {
      ...n,
      status: {
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            message: 'sandbox kubelet is posting ready status',
            lastHeartbeatTime: now(),
            lastTransitionTime: now(),
          },
        ],
        addresses: [
          { type: 'InternalIP', address: '127.0.0.1' },
          { type: 'Hostname', address: NODE_NAME },
        ],
        capacity: { cpu: '2', memory: '4Gi', pods: '110' },
        allocatable: { cpu: '2', memory: '4Gi', pods: '110' },
        nodeInfo: {
          kubeletVersion: 'v1.32.0-sandbox',
          operatingSystem: 'linux',
          architecture: 'amd64',
        },
      },
    },
    { subresource: 'status' },
  );
  const sc = mustType(api, 'storage.k8s.io/v1', 'StorageClass');
  api.create(sc, '', {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'standard', annotations: { [DEFAULT_CLASS_ANNOTATION]: 'true' } },
    provisioner: PROVISIONER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
  });
  api.create(sc, '', {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'wffc' },
    provisioner: PROVISIONER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'WaitForFirstConsumer',
  });
}
