// SPDX-License-Identifier: Apache-2.0
/**
 * What a container sees, mapped to the host: volumes materialised (Secret, ConfigMap, emptyDir
 * into the pod's directory; PVCs to their PV's hostPath), the environment resolved from values,
 * Secret/ConfigMap keys and the downward API, and the in-pod paths the CDI entry uses rewritten
 * to host paths through its `CDI_*` overrides (see common/contract.ts).
 */
import { chmodSync, cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
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
import type { TokenIssuer } from './tokens.js';
import { SERVICE_ACCOUNT_DIR } from './service-accounts.js';

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

/** The mode of Secret, ConfigMap and projected files unless `defaultMode`/`mode` say otherwise. */
const DEFAULT_FILE_MODE = 0o644;

function modeOf(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0o777
    ? value
    : fallback;
}

/**
 * Writes the keys of a Secret or ConfigMap as files: all of them, or only those `items` names,
 * at their `path`, with the item's `mode`, else `defaultMode` (0644 when unset).
 */
function writeKeys(
  dir: string,
  data: Map<string, Buffer>,
  items: unknown,
  defaultMode: number,
): void {
  mkdirSync(dir, { recursive: true });
  const list = Array.isArray(items) ? items.filter(isRecord) : undefined;
  for (const [key, value] of data) {
    const item = list?.find((i) => i['key'] === key);
    if (list !== undefined && item === undefined) continue;
    const file = join(dir, typeof item?.['path'] === 'string' ? item['path'] : key);
    writeFile(file, value, modeOf(item?.['mode'], defaultMode));
  }
}

function writeFile(file: string, value: Buffer | string, mode: number): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, value);
  // chmod, not writeFileSync's mode: that one is filtered by the umask.
  chmodSync(file, mode);
}

/** The Secret or ConfigMap a volume (or projected source) names; NotReadyError unless optional. */
function keySource(
  api: ObjectApi,
  ns: string,
  volume: string,
  src: Record<string, unknown>,
  isSecret: boolean,
): Map<string, Buffer> {
  const objName = String(
    isSecret && src['secretName'] !== undefined ? src['secretName'] : src['name'],
  );
  const obj = lookup(api, isSecret ? Types.Secrets : Types.ConfigMaps, ns, objName);
  if (obj === undefined && src['optional'] !== true) {
    throw new NotReadyError(
      'ContainerCreating',
      `MountVolume.SetUp failed for volume "${volume}" : ${isSecret ? 'secret' : 'configmap'} "${objName}" not found`,
    );
  }
  return obj === undefined ? new Map<string, Buffer>() : decodedData(obj, isSecret);
}

/** What a pod needs to materialise its volumes. */
export interface VolumeContext {
  readonly api: ObjectApi;
  /** Issues the tokens of projected `serviceAccountToken` sources. */
  readonly tokens: TokenIssuer;
}

/**
 * A projected volume: Secrets, ConfigMaps, the downward API (metadata fields) and the pod's
 * service-account token, each at its paths in one directory.
 */
function writeProjected(
  ctx: VolumeContext,
  pod: KObject,
  volume: string,
  projected: Record<string, unknown>,
  dir: string,
): void {
  const ns = pod.metadata.namespace ?? '';
  const defaultMode = modeOf(projected['defaultMode'], DEFAULT_FILE_MODE);
  mkdirSync(dir, { recursive: true });
  const sources = Array.isArray(projected['sources']) ? projected['sources'].filter(isRecord) : [];
  for (const source of sources) {
    if (isRecord(source['secret']) || isRecord(source['configMap'])) {
      const isSecret = isRecord(source['secret']);
      const src = (isSecret ? source['secret'] : source['configMap']) as Record<string, unknown>;
      writeKeys(dir, keySource(ctx.api, ns, volume, src, isSecret), src['items'], defaultMode);
    } else if (isRecord(source['serviceAccountToken'])) {
      const t = source['serviceAccountToken'];
      const saName = str(getPath(pod, ['spec', 'serviceAccountName']), 'default');
      const sa = lookup(ctx.api, Types.ServiceAccounts, ns, saName);
      const audience = typeof t['audience'] === 'string' ? [t['audience']] : [];
      const { token } = ctx.tokens.issue({
        namespace: ns,
        name: saName,
        uid: sa?.metadata.uid ?? '',
        audiences: audience,
        ...(typeof t['expirationSeconds'] === 'number'
          ? { expirationSeconds: t['expirationSeconds'] }
          : {}),
      });
      writeFile(join(dir, str(t['path'], 'token')), token, defaultMode);
    } else if (isRecord(source['downwardAPI'])) {
      const items = source['downwardAPI']['items'];
      for (const item of Array.isArray(items) ? items.filter(isRecord) : []) {
        const ref = item['fieldRef'];
        if (!isRecord(ref)) continue;
        writeFile(
          join(dir, str(item['path'])),
          fieldRef(pod, str(ref['fieldPath'])),
          modeOf(item['mode'], defaultMode),
        );
      }
    }
  }
}

/** Materialises every volume of the pod under `podDir/volumes`; throws NotReadyError to wait. */
export function prepareVolumes(ctx: VolumeContext, pod: KObject, podDir: string): VolumeMap {
  const { api } = ctx;
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
      writeKeys(
        dir,
        keySource(api, ns, name, src, isSecret),
        src['items'],
        modeOf(src['defaultMode'], DEFAULT_FILE_MODE),
      );
      out.set(name, { path: dir, block: false });
    } else if (isRecord(v['projected'])) {
      writeProjected(ctx, pod, name, v['projected'], dir);
      out.set(name, { path: dir, block: false });
    } else {
      // emptyDir, downwardAPI and anything else: a private directory.
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

/**
 * A host directory standing for the in-pod directory `inPod` whose entries are mounts (CDI
 * mounts each extra-headers Secret at `/extraheaders/<i>`): a copy of each mount under
 * `root + inPod`, taken when the container starts. A copy, not a symlink, because readers list
 * the directory and skip what is not a directory; the sources (Secret volumes) are written once
 * per pod, so the copy sees the same content. Undefined when nothing is mounted below `inPod`.
 */
function mountParent(
  mounts: readonly [string, string][],
  inPod: string,
  root: string,
): string | undefined {
  const below = mounts.filter(([p]) => p.startsWith(`${inPod}/`));
  if (below.length === 0) return undefined;
  const hostDir = join(root, inPod);
  rmSync(hostDir, { recursive: true, force: true });
  for (const [p, host] of below) {
    const target = join(hostDir, p.slice(inPod.length + 1));
    mkdirSync(dirname(target), { recursive: true });
    cpSync(host, target, { recursive: true });
  }
  return hostDir;
}

/** Options of {@link containerEnv}. */
export interface ContainerEnvOptions {
  readonly api: ObjectApi;
  readonly pod: KObject;
  readonly container: Record<string, unknown>;
  readonly volumes: VolumeMap;
  readonly terminationLog: string;
  readonly home: string;
  /**
   * Where the container runs: `host` (a local process: in-pod paths rewritten to host paths,
   * CDI's path overrides set) or `container` (the image's environment first, in-pod paths kept).
   */
  readonly paths?: 'host' | 'container';
  /** The image's environment (`NAME=value`), under the pod's; only with `paths: 'container'`. */
  readonly imageEnv?: readonly string[];
}

/** `NAME=value` entries as a record. */
function envRecord(entries: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    const eq = e.indexOf('=');
    if (eq > 0) out[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return out;
}

/** The environment of one container, with the CDI path overrides; throws NotReadyError to wait. */
export function containerEnv(opts: ContainerEnvOptions): Record<string, string> {
  const { api, pod, container, volumes } = opts;
  const ns = pod.metadata.namespace ?? '';
  const inContainer = opts.paths === 'container';
  const env: Record<string, string> = inContainer
    ? { HOME: '/', ...envRecord(opts.imageEnv ?? []), HOSTNAME: pod.metadata.name ?? '' }
    : {
        PATH: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin',
        HOME: opts.home,
        HOSTNAME: pod.metadata.name ?? '',
      };
  Object.assign(env, kubernetesServiceEnv(api));
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
  const ip = getPath(pod, ['status', 'podIP']);
  // Pods share the host's network here: each listens on its own address, not 0.0.0.0.
  if (typeof ip === 'string') {
    env[ImporterEnv.MetricsAddress] = `${ip}:${METRICS_PORT}`;
    env[UploadServerEnv.ListenAddress] = `${ip}:${UPLOAD_SERVER_PORT}`;
  }
  if (inContainer) return env;
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
  const serviceAccount = hostOf(SERVICE_ACCOUNT_DIR);
  if (serviceAccount !== undefined && env['KUBECONFIG'] === undefined) {
    const kubeconfig = inClusterKubeconfig(
      env,
      serviceAccount,
      join(opts.home, 'roots', str(container['name'])),
    );
    if (kubeconfig !== undefined) env['KUBECONFIG'] = kubeconfig;
  }
  const headers = mountParent(
    mounts,
    PodPaths.ExtraHeadersDir,
    join(opts.home, 'roots', str(container['name'])),
  );
  if (headers !== undefined) env[ImporterEnv.ExtraHeadersDir] = headers;
  return env;
}

/**
 * `KUBERNETES_SERVICE_HOST`, `KUBERNETES_SERVICE_PORT` and `KUBERNETES_SERVICE_PORT_HTTPS`, as
 * the kubelet sets them in every container from the `default/kubernetes` Service.
 */
export function kubernetesServiceEnv(api: ObjectApi): Record<string, string> {
  const svc = lookup(api, Types.Services, 'default', 'kubernetes');
  const ip = getPath(svc, ['spec', 'clusterIP']);
  const ports = getPath(svc, ['spec', 'ports']);
  const port = Array.isArray(ports) ? ports.filter(isRecord)[0]?.['port'] : undefined;
  if (typeof ip !== 'string' || typeof port !== 'number') return {};
  return {
    KUBERNETES_SERVICE_HOST: ip,
    KUBERNETES_SERVICE_PORT: String(port),
    KUBERNETES_SERVICE_PORT_HTTPS: String(port),
  };
}

/**
 * For a local process, which cannot see the service-account volume at its in-pod path: a
 * kubeconfig with exactly what in-cluster configuration reads (the Service address, `ca.crt`
 * and the token file, re-read as it rotates), named by `KUBECONFIG`.
 */
function inClusterKubeconfig(
  env: Readonly<Record<string, string>>,
  dir: string,
  root: string,
): string | undefined {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (host === undefined || port === undefined) return undefined;
  const file = join(root, 'in-cluster.kubeconfig');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'inCluster',
        cluster: {
          server: `https://${host}:${port}`,
          'certificate-authority': join(dir, 'ca.crt'),
        },
      },
    ],
    users: [
      {
        name: 'inClusterUser',
        user: { 'auth-provider': { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } } },
      },
    ],
    contexts: [
      { name: 'inClusterContext', context: { cluster: 'inCluster', user: 'inClusterUser' } },
    ],
    'current-context': 'inClusterContext',
  };
  writeFile(file, JSON.stringify(config), 0o600);
  return file;
}

/**
 * The container with `$(VAR)` in `command` and `args` replaced by the variable's value, as the
 * kubelet expands them (`$$` stands for `$`; an unknown reference is kept as written).
 */
export function expandCommand(
  container: Record<string, unknown>,
  env: Readonly<Record<string, string>>,
): Record<string, unknown> {
  const expand = (list: unknown): unknown =>
    Array.isArray(list)
      ? list.map((a: unknown) =>
          typeof a === 'string'
            ? a.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string | undefined) =>
                v === undefined ? '$' : (env[v] ?? m),
              )
            : a,
        )
      : list;
  const out = { ...container };
  for (const field of ['command', 'args'])
    if (container[field] !== undefined) out[field] = expand(container[field]);
  return out;
}
