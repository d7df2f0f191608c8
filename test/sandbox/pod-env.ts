// SPDX-License-Identifier: Apache-2.0
/**
 * What a container sees, mapped to the host: volumes materialised (Secret, ConfigMap, emptyDir
 * into the pod's directory; PVCs to their PV's hostPath), the environment resolved from values,
 * Secret/ConfigMap keys and the downward API, and the in-pod paths the CDI entry uses rewritten
 * to host paths through its `CDI_*` overrides (see common/contract.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  ImporterEnv,
  METRICS_PORT,
  PodPaths,
  UPLOAD_SERVER_PORT,
  UploadServerEnv,
} from '../../common/contract.js';
import { Types } from './cluster.js';
import type { ObjectApi } from './object-api.js';
import { getPath, isRecord, str, type KObject } from './object.js';

/** Port of the upload server in its pod (CDI's upload pod spec). */

/** A volume is not ready yet (its Secret, ConfigMap or claim is missing): the pod waits. */
export class NotReadyError extends Error {
  override readonly name = 'NotReadyError';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** Host paths of the pod's volumes, by volume name; `block` marks a block PV file. */
export type VolumeMap = ReadonlyMap<string, { readonly path: string; readonly block: boolean }>;

function lookup(api: ObjectApi, key: string, ns: string, name: string): KObject | undefined {
  const type = api.types.get(key);
  return type === undefined ? undefined : api.find(type, ns, name);
}

function decodedData(obj: KObject, base64: boolean): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const data = obj['data'];
  if (isRecord(data)) {
    for (const [k, v] of Object.entries(data)) {
      if (typeof v === 'string') out.set(k, base64 ? Buffer.from(v, 'base64') : Buffer.from(v));
    }
  }
  const binary = obj['binaryData'];
  if (isRecord(binary)) {
    for (const [k, v] of Object.entries(binary))
      if (typeof v === 'string') out.set(k, Buffer.from(v, 'base64'));
  }
  return out;
}

function writeKeys(dir: string, data: Map<string, Buffer>, items: unknown): void {
  mkdirSync(dir, { recursive: true });
  const list = Array.isArray(items) ? items.filter(isRecord) : undefined;
  for (const [key, value] of data) {
    const item = list?.find((i) => i['key'] === key);
    if (list !== undefined && item === undefined) continue;
    const file = join(dir, typeof item?.['path'] === 'string' ? item['path'] : key);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, value);
  }
}

/** Materialises every volume of the pod under `podDir/volumes`; throws NotReadyError to wait. */
export function prepareVolumes(api: ObjectApi, pod: KObject, podDir: string): VolumeMap {
  const ns = pod.metadata.namespace ?? '';
  const out = new Map<string, { path: string; block: boolean }>();
  const volumes = getPath(pod, ['spec', 'volumes']);
  for (const v of Array.isArray(volumes) ? volumes.filter(isRecord) : []) {
    const name = String(v['name']);
    const dir = join(podDir, 'volumes', name);
    if (isRecord(v['persistentVolumeClaim'])) {
      const claim = String(v['persistentVolumeClaim']['claimName']);
      const pvc = lookup(api, Types.Pvcs, ns, claim);
      const pvName = getPath(pvc, ['spec', 'volumeName']);
      const pv = typeof pvName === 'string' ? lookup(api, Types.Pvs, '', pvName) : undefined;
      const path = getPath(pv, ['spec', 'hostPath', 'path']);
      if (typeof path !== 'string')
        throw new NotReadyError(
          'ContainerCreating',
          `persistentvolumeclaim "${claim}" is not bound`,
        );
      out.set(name, { path, block: getPath(pv, ['spec', 'volumeMode']) === 'Block' });
    } else if (isRecord(v['secret']) || isRecord(v['configMap'])) {
      const isSecret = isRecord(v['secret']);
      const src = (isSecret ? v['secret'] : v['configMap']) as Record<string, unknown>;
      const objName = String(isSecret ? src['secretName'] : src['name']);
      const obj = lookup(api, isSecret ? Types.Secrets : Types.ConfigMaps, ns, objName);
      if (obj === undefined && src['optional'] !== true) {
        throw new NotReadyError(
          'ContainerCreating',
          `MountVolume.SetUp failed for volume "${name}" : ${isSecret ? 'secret' : 'configmap'} "${objName}" not found`,
        );
      }
      writeKeys(
        dir,
        obj === undefined ? new Map<string, Buffer>() : decodedData(obj, isSecret),
        src['items'],
      );
      out.set(name, { path: dir, block: false });
    } else {
      // emptyDir, projected, downwardAPI and anything else: a private directory.
      mkdirSync(dir, { recursive: true });
      out.set(name, { path: dir, block: false });
    }
  }
  return out;
}

function keyRef(
  api: ObjectApi,
  ns: string,
  ref: Record<string, unknown>,
  secret: boolean,
): string | undefined {
  const obj = lookup(api, secret ? Types.Secrets : Types.ConfigMaps, ns, String(ref['name']));
  const value = obj === undefined ? undefined : decodedData(obj, secret).get(String(ref['key']));
  if (value === undefined && ref['optional'] !== true) {
    throw new NotReadyError(
      'CreateContainerConfigError',
      obj === undefined
        ? `${secret ? 'secret' : 'configmap'} "${String(ref['name'])}" not found`
        : `couldn't find key ${String(ref['key'])} in ${secret ? 'Secret' : 'ConfigMap'} ${ns}/${String(ref['name'])}`,
    );
  }
  return value?.toString('utf8');
}

function fieldRef(pod: KObject, path: string): string {
  const label = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (label !== null) return str(getPath(pod, ['metadata', label[1] ?? '', label[2] ?? '']));
  const v = getPath(pod, path.split('.'));
  return str(v);
}

/** Mounts of a container as [in-pod path, host path] pairs, longest first. */
export function containerMounts(
  container: Record<string, unknown>,
  volumes: VolumeMap,
): [string, string][] {
  const out: [string, string][] = [];
  const mounts = container['volumeMounts'];
  for (const m of Array.isArray(mounts) ? mounts.filter(isRecord) : []) {
    const vol = volumes.get(String(m['name']));
    if (vol === undefined || typeof m['mountPath'] !== 'string') continue;
    const sub =
      typeof m['subPath'] === 'string' && m['subPath'] !== ''
        ? join(vol.path, m['subPath'])
        : vol.path;
    out.push([m['mountPath'].replace(/\/+$/, ''), sub]);
  }
  const devices = container['volumeDevices'];
  for (const d of Array.isArray(devices) ? devices.filter(isRecord) : []) {
    const vol = volumes.get(String(d['name']));
    if (vol !== undefined && typeof d['devicePath'] === 'string')
      out.push([d['devicePath'], vol.path]);
  }
  return out.sort(([a], [b]) => b.length - a.length);
}

/** Mounts plus the container's terminationMessagePath, as [in-pod, host] pairs. */
export function containerPaths(
  container: Record<string, unknown>,
  volumes: VolumeMap,
  terminationLog: string,
): [string, string][] {
  const path =
    typeof container['terminationMessagePath'] === 'string'
      ? container['terminationMessagePath']
      : PodPaths.TerminationLog;
  return [...containerMounts(container, volumes), [path, terminationLog]];
}

function rewrite(value: string, mounts: readonly [string, string][]): string {
  for (const [inPod, host] of mounts) {
    if (value === inPod) return host;
    if (value.startsWith(`${inPod}/`)) return host + value.slice(inPod.length);
  }
  return value;
}

/** Options of {@link containerEnv}. */
export interface ContainerEnvOptions {
  readonly api: ObjectApi;
  readonly pod: KObject;
  readonly container: Record<string, unknown>;
  readonly volumes: VolumeMap;
  readonly terminationLog: string;
  readonly home: string;
}

/** The environment of one container, with the CDI path overrides; throws NotReadyError to wait. */
export function containerEnv(opts: ContainerEnvOptions): Record<string, string> {
  const { api, pod, container, volumes } = opts;
  const ns = pod.metadata.namespace ?? '';
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: opts.home,
    HOSTNAME: pod.metadata.name ?? '',
  };
  const envFrom = container['envFrom'];
  for (const src of Array.isArray(envFrom) ? envFrom.filter(isRecord) : []) {
    const prefix = typeof src['prefix'] === 'string' ? src['prefix'] : '';
    const secret = isRecord(src['secretRef']);
    const ref = (secret ? src['secretRef'] : src['configMapRef']) as
      Record<string, unknown> | undefined;
    if (ref === undefined) continue;
    const obj = lookup(api, secret ? Types.Secrets : Types.ConfigMaps, ns, String(ref['name']));
    if (obj === undefined && ref['optional'] !== true) {
      throw new NotReadyError(
        'CreateContainerConfigError',
        `${secret ? 'secret' : 'configmap'} "${String(ref['name'])}" not found`,
      );
    }
    for (const [k, v] of obj === undefined ? [] : decodedData(obj, secret))
      env[prefix + k] = v.toString('utf8');
  }
  const list = container['env'];
  for (const e of Array.isArray(list) ? list.filter(isRecord) : []) {
    const name = String(e['name']);
    const from = e['valueFrom'];
    if (isRecord(from)) {
      let value: string | undefined;
      if (isRecord(from['secretKeyRef'])) value = keyRef(api, ns, from['secretKeyRef'], true);
      else if (isRecord(from['configMapKeyRef']))
        value = keyRef(api, ns, from['configMapKeyRef'], false);
      else if (isRecord(from['fieldRef']))
        value = fieldRef(pod, String(from['fieldRef']['fieldPath']));
      else value = '';
      if (value !== undefined) env[name] = value;
    } else {
      // $(VAR) references to earlier variables, as the kubelet expands them.
      env[name] = str(e['value']).replace(
        /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g,
        (m, v: string) => env[v] ?? m,
      );
    }
  }
  const mounts = containerPaths(container, volumes, opts.terminationLog);
  for (const [k, v] of Object.entries(env))
    if (k !== 'PATH' && k !== 'HOME') env[k] = rewrite(v, mounts);
  const hostOf = (inPod: string): string | undefined => mounts.find(([p]) => p === inPod)?.[1];
  const data = hostOf(PodPaths.DataDir);
  const scratch = hostOf(PodPaths.ScratchDir);
  const block = hostOf(PodPaths.BlockDevice);
  if (data !== undefined) env[ImporterEnv.DataDir] = data;
  if (scratch !== undefined) env[ImporterEnv.ScratchDir] = scratch;
  if (block !== undefined) env[ImporterEnv.BlockDevice] = block;
  env[ImporterEnv.TerminationLog] = opts.terminationLog;
  const ip = getPath(pod, ['status', 'podIP']);
  // Pods share the host's network here: each listens on its own address, not 0.0.0.0.
  if (typeof ip === 'string') {
    env[ImporterEnv.MetricsAddress] = `${ip}:${METRICS_PORT}`;
    env[UploadServerEnv.ListenAddress] = `${ip}:${UPLOAD_SERVER_PORT}`;
  }
  return env;
}
