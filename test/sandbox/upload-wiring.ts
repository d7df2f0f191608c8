// SPDX-License-Identifier: Apache-2.0
/**
 * What a cluster admin (or CDI's operator) does around the upload path, done here for the
 * processes the sandbox runs outside its pods: wait for the PKI the controller bootstraps in
 * namespace `cdi`, write it to files as a kubelet would mount it, register the token API as the
 * APIService `v1beta1.upload.cdi.kubevirt.io` (Service `cdi-api` with `externalName: 127.0.0.1`),
 * and point CDIConfig `spec.uploadProxyURLOverride` at the proxy.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CDI_CONFIG_NAME } from '../../common/api/datavolume.js';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { Types } from './cluster.js';
import type { ObjectApi } from './object-api.js';
import { isRecord, type KObject } from './object.js';
import { PatchTypes } from './patch.js';

/** The namespace CDI runs in (`cdi controller --namespace cdi`). */
export const CDI_NAMESPACE = 'cdi';

/** One Secret or ConfigMap the upload components mount, and the keys they need from it. */
export interface MountedObject {
  readonly kind: 'Secret' | 'ConfigMap';
  readonly namespace: string;
  readonly name: string;
  readonly keys: readonly string[];
}

/** What the token API server and the proxy mount (names as CDI's operator uses them). */
export const UPLOAD_PKI_OBJECTS = {
  signingKey: {
    kind: 'Secret',
    namespace: CDI_NAMESPACE,
    name: 'cdi-api-signing-key',
    keys: ['id_rsa', 'id_rsa.pub'],
  },
  apiServerCert: {
    kind: 'Secret',
    namespace: CDI_NAMESPACE,
    name: 'cdi-apiserver-server-cert',
    keys: ['tls.crt', 'tls.key'],
  },
  apiServerBundle: {
    kind: 'ConfigMap',
    namespace: CDI_NAMESPACE,
    name: 'cdi-apiserver-signer-bundle',
    keys: ['ca-bundle.crt'],
  },
  uploadClientCert: {
    kind: 'Secret',
    namespace: CDI_NAMESPACE,
    name: 'cdi-uploadserver-client-cert',
    keys: ['tls.crt', 'tls.key'],
  },
  uploadServerBundle: {
    kind: 'ConfigMap',
    namespace: CDI_NAMESPACE,
    name: 'cdi-uploadserver-signer-bundle',
    keys: ['ca-bundle.crt'],
  },
} as const satisfies Record<string, MountedObject>;

/** The key of {@link UPLOAD_PKI_OBJECTS}. */
export type UploadPkiObject = keyof typeof UPLOAD_PKI_OBJECTS;

/** Files of each mounted object: `<dir>/<name>/<key>`. */
export type MountedFiles = Record<UploadPkiObject, Record<string, string>>;

/** Creates a namespace unless it exists. */
export function ensureNamespace(api: ObjectApi, name: string): void {
  const type = api.types.get(Types.Namespaces);
  if (type === undefined || api.find(type, '', name) !== undefined) return;
  api.create(type, '', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

function dataOf(api: ObjectApi, o: MountedObject): Map<string, Buffer> | undefined {
  const type = api.types.get(o.kind === 'Secret' ? Types.Secrets : Types.ConfigMaps);
  const obj = type === undefined ? undefined : api.find(type, o.namespace, o.name);
  if (obj === undefined) return undefined;
  const data = obj['data'];
  const out = new Map<string, Buffer>();
  for (const key of o.keys) {
    const v = isRecord(data) ? data[key] : undefined;
    if (typeof v !== 'string') return undefined;
    out.set(key, o.kind === 'Secret' ? Buffer.from(v, 'base64') : Buffer.from(v));
  }
  return out;
}

function missing(api: ObjectApi): string[] {
  return Object.values(UPLOAD_PKI_OBJECTS)
    .filter((o) => dataOf(api, o) === undefined)
    .map((o) => `${o.kind} ${o.namespace}/${o.name} (${o.keys.join(', ')})`);
}

/**
 * Resolves once every object of {@link UPLOAD_PKI_OBJECTS} exists with its keys (checked again
 * on every Secret or ConfigMap event); after `timeoutMs`, fails with `CDI_INTERNAL` naming what
 * is still missing.
 */
export function waitForUploadPki(api: ObjectApi, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      unsubscribe();
    };
    const check = (): void => {
      if (missing(api).length > 0) return;
      done();
      resolve();
    };
    const unsubscribe = api.store.subscribe((e) => {
      if (e.typeKey === Types.Secrets || e.typeKey === Types.ConfigMaps) check();
    });
    const timer = setTimeout(() => {
      done();
      reject(
        new CdiError(
          ErrorCodes.Internal,
          `the upload proxy needs the controller's PKI, still missing after ${timeoutMs} ms: ${missing(api).join('; ')}`,
        ),
      );
    }, timeoutMs);
    check();
  });
}

/** Writes every object of {@link UPLOAD_PKI_OBJECTS} under `dir` as a kubelet mounts it. */
export async function writeUploadPki(api: ObjectApi, dir: string): Promise<MountedFiles> {
  const out: Partial<MountedFiles> = {};
  for (const [id, o] of Object.entries(UPLOAD_PKI_OBJECTS) as [UploadPkiObject, MountedObject][]) {
    const data = dataOf(api, o);
    if (data === undefined)
      throw new CdiError(ErrorCodes.Internal, `${o.kind} ${o.namespace}/${o.name} disappeared`);
    const objDir = join(dir, o.name);
    await mkdir(objDir, { recursive: true, mode: 0o700 });
    await chmod(objDir, 0o700);
    const files: Record<string, string> = {};
    for (const [key, value] of data) {
      const file = join(objDir, key);
      await writeFile(file, value, { mode: 0o600 });
      files[key] = file;
    }
    out[id] = files;
  }
  return out as MountedFiles;
}

/** The upload token API's group and version. */
export const UPLOAD_API = { group: 'upload.cdi.kubevirt.io', version: 'v1beta1' } as const;

function createOrReplace(api: ObjectApi, apiVersion: string, body: KObject): void {
  const type = api.typeOf(apiVersion, String(body['kind']));
  if (type === undefined) throw new CdiError(ErrorCodes.Internal, `no type for ${apiVersion}`);
  const ns = type.namespaced ? (body.metadata.namespace ?? 'default') : '';
  const name = body.metadata.name ?? '';
  const existing = api.find(type, ns, name);
  if (existing === undefined) api.create(type, ns, body);
  else
    api.update(type, ns, name, {
      ...body,
      metadata: { ...existing.metadata, ...body.metadata },
    });
}

/**
 * Registers the token API listening on 127.0.0.1:`port`: Service `cdi/cdi-api`
 * (`externalName: 127.0.0.1`) and APIService `v1beta1.upload.cdi.kubevirt.io` trusting `caPem`.
 */
export function registerTokenApi(api: ObjectApi, port: number, caPem: string): void {
  createOrReplace(api, 'v1', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'cdi-api', namespace: CDI_NAMESPACE, labels: { 'cdi.kubevirt.io': '' } },
    spec: { type: 'ExternalName', externalName: '127.0.0.1' },
  });
  createOrReplace(api, 'apiregistration.k8s.io/v1', {
    apiVersion: 'apiregistration.k8s.io/v1',
    kind: 'APIService',
    metadata: {
      name: `${UPLOAD_API.version}.${UPLOAD_API.group}`,
      labels: { 'cdi.kubevirt.io': '' },
    },
    spec: {
      group: UPLOAD_API.group,
      version: UPLOAD_API.version,
      service: { namespace: CDI_NAMESPACE, name: 'cdi-api', port },
      caBundle: Buffer.from(caPem).toString('base64'),
      groupPriorityMinimum: 1000,
      versionPriority: 15,
    },
  });
}

/** Sets CDIConfig `spec.uploadProxyURLOverride` (creating the CDIConfig when absent). */
export function setUploadProxyUrl(api: ObjectApi, url: string): void {
  const type = api.typeOf('cdi.kubevirt.io/v1beta1', 'CDIConfig');
  if (type === undefined)
    throw new CdiError(ErrorCodes.Internal, 'the CDIConfig CRD is not registered');
  if (api.find(type, '', CDI_CONFIG_NAME) === undefined) {
    api.create(type, '', {
      apiVersion: 'cdi.kubevirt.io/v1beta1',
      kind: 'CDIConfig',
      metadata: { name: CDI_CONFIG_NAME },
      spec: { uploadProxyURLOverride: url },
    });
    return;
  }
  api.patch(type, { namespace: '', name: CDI_CONFIG_NAME }, PatchTypes.Merge, {
    spec: { uploadProxyURLOverride: url },
  });
}
