// SPDX-License-Identifier: Apache-2.0
/**
 * The `runc` pod runtime: every container runs from the cdi image (the OCI archive of
 * `npm run image`, unpacked once per archive digest) with runc, as a kubelet would run it:
 * - argv from `command`/`args` over the image's Entrypoint/Cmd, the working directory, and the
 *   environment (the image's, then the pod's, `valueFrom` resolved) with in-pod paths kept;
 * - the pod's and container's securityContext: runAsUser/runAsGroup (else the image's User),
 *   fsGroup and supplementalGroups as additional groups, fsGroup applied to the volumes
 *   (group-owned, group-readable or writable, setgid directories), runAsNonRoot refused for
 *   root, readOnlyRootFilesystem, capabilities (containerd's default set, `drop`, `add`) and
 *   allowPrivilegeEscalation;
 * - volumes as bind mounts at their mountPath (subPath, readOnly), block volumes at their
 *   devicePath, and the termination-message file at terminationMessagePath;
 * - `resources.limits` memory and cpu as cgroup-v1 limits; the host's network namespace (each
 *   pod listens on its own 127.x address, passed by env as in the process runtime).
 * Images come from one archive (every container runs it: it holds the only program CDI's pods
 * run) or, with a registry, from a node's image store: each container's `image` resolved to a
 * digest, pulled and unpacked once per digest, by its imagePullPolicy.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PodPaths } from '../../common/contract.js';
import { parseQuantity } from '../../common/quantity.js';
import type { ExitInfo } from './container-process.js';
import { startContainer, type BindMount } from '../containers/runc.js';
import { pruneUnpacked, unpackImage, type ImageRuntimeConfig } from '../containers/oci-image.js';
import { capabilitiesOf } from '../containers/capabilities.js';
import { getPath, isRecord, type KObject } from './object.js';
import { containerEnv, NotReadyError, type VolumeMap } from './pod-env.js';
import {
  ImagePullError,
  type ContainerLaunch,
  type ContainerRecord,
  type LaunchedContainer,
  type PodRuntime,
} from './pod-runtime.js';
import { PullFailure, pullPolicyOf, type ImageStore } from '../containers/image-store.js';

/** An unpacked image: what the runtime needs of it. */
export interface PodImage {
  readonly rootfs: string;
  readonly config: ImageRuntimeConfig;
  /** `sha256:<hex>` of the archive. */
  readonly digest: string;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** An unpacked image no sandbox loaded for this long is removed when another one is loaded. */
const UNUSED_IMAGE_MS = 60 * 60_000;

/**
 * Unpacks `archive` under `cacheDir/<digest>` unless it is there already; concurrent sandboxes
 * unpack into their own directory and the first rename wins. Each build of the image has its
 * own digest, so images unused for an hour are removed.
 */
export async function loadPodImage(archive: string, cacheDir: string): Promise<PodImage> {
  const hex = await sha256File(archive);
  const dir = join(cacheDir, hex);
  const marker = join(dir, 'config.json');
  if (!existsSync(marker)) {
    await mkdir(cacheDir, { recursive: true });
    const work = await mkdtemp(join(cacheDir, 'unpack-'));
    try {
      const image = await unpackImage(archive, work);
      await writeFile(join(work, 'config.json'), JSON.stringify(image.config));
      await rename(work, dir).catch((err: unknown) => {
        if (!existsSync(marker)) throw err;
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  const loadedAt = new Date();
  await utimes(marker, loadedAt, loadedAt);
  await pruneUnpacked(cacheDir, hex, UNUSED_IMAGE_MS);
  const config = JSON.parse(await readFile(marker, 'utf8')) as ImageRuntimeConfig;
  return { rootfs: join(dir, 'rootfs'), config, digest: `sha256:${hex}` };
}

/** The securityContext settings of one container, the container's over the pod's. */
interface Security {
  readonly uid: number;
  readonly gid: number;
  readonly fsGroup: number | undefined;
  readonly additionalGids: readonly number[];
  readonly runAsNonRoot: boolean;
  readonly readOnlyRootFilesystem: boolean;
  /** The runtime's default capabilities, minus `drop`, plus `add` (root keeps them at exec). */
  readonly capabilities: readonly string[];
  /** `allowPrivilegeEscalation: false` sets no_new_privs; unset allows escalation. */
  readonly noNewPrivileges: boolean;
}

function int(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

/** A numeric user or group of an image's `User` (a name cannot be resolved without /etc/passwd). */
function numericId(text: string): number | undefined {
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

/** runAsUser/runAsGroup of the container over the pod's over the image's User, else root. */
function idsOf(
  ps: Record<string, unknown>,
  cs: Record<string, unknown>,
  image: ImageRuntimeConfig,
): { uid: number; gid: number } {
  const [imageUid, imageGid] = (image.User ?? '').split(':').map(numericId);
  return {
    uid: int(cs['runAsUser']) ?? int(ps['runAsUser']) ?? imageUid ?? 0,
    gid: int(cs['runAsGroup']) ?? int(ps['runAsGroup']) ?? imageGid ?? 0,
  };
}

/** The securityContext (see the module comment); throws NotReadyError as the kubelet refuses. */
export function securityOf(
  pod: KObject,
  container: Record<string, unknown>,
  image: ImageRuntimeConfig,
): Security {
  const podSc = getPath(pod, ['spec', 'securityContext']);
  const ps = isRecord(podSc) ? podSc : {};
  const cs = isRecord(container['securityContext']) ? container['securityContext'] : {};
  const { uid, gid } = idsOf(ps, cs, image);
  const fsGroup = int(ps['fsGroup']);
  const supplemental = Array.isArray(ps['supplementalGroups'])
    ? ps['supplementalGroups'].map(int).filter((g): g is number => g !== undefined)
    : [];
  const runAsNonRoot = (cs['runAsNonRoot'] ?? ps['runAsNonRoot']) === true;
  const name = String(container['name']);
  const podName = `${pod.metadata.name ?? ''}_${pod.metadata.namespace ?? ''}(${pod.metadata.uid ?? ''})`;
  if (runAsNonRoot && uid === 0) {
    throw new NotReadyError(
      'CreateContainerConfigError',
      `container has runAsNonRoot and image will run as root (pod: "${podName}", container: ${name})`,
    );
  }
  return {
    uid,
    gid,
    fsGroup,
    additionalGids: [...new Set([...(fsGroup === undefined ? [] : [fsGroup]), ...supplemental])],
    runAsNonRoot,
    readOnlyRootFilesystem: cs['readOnlyRootFilesystem'] === true,
    capabilities: capabilitiesOf(cs),
    noNewPrivileges: cs['allowPrivilegeEscalation'] === false,
  };
}

/** `500m`, `2`, `0.5` as thousandths of a CPU. */
export function parseCpuMillis(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(text.trim());
  if (m === null) throw new Error(`invalid cpu quantity ${JSON.stringify(text)}`);
  const n = Number(m[1]);
  return Math.ceil(m[2] === 'm' ? n : n * 1000);
}

/** `resources.limits` of a container: memory in bytes, cpu in thousandths. */
export function limitsOf(container: Record<string, unknown>): {
  readonly memoryBytes: number | undefined;
  readonly cpuMillis: number | undefined;
} {
  const limits = getPath(container, ['resources', 'limits']);
  const l = isRecord(limits) ? limits : {};
  const memory = l['memory'];
  const cpu = l['cpu'];
  return {
    memoryBytes:
      typeof memory === 'string' || typeof memory === 'number'
        ? parseQuantity(String(memory))
        : undefined,
    cpuMillis:
      typeof cpu === 'string' || typeof cpu === 'number' ? parseCpuMillis(String(cpu)) : undefined,
  };
}

/** The container's argv: `command` replaces the Entrypoint (and drops Cmd), `args` replaces Cmd. */
export function argvOf(container: Record<string, unknown>, image: ImageRuntimeConfig): string[] {
  const list = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.map(String) : undefined);
  const command = list(container['command']);
  const args = list(container['args']);
  if (command !== undefined) return [...command, ...(args ?? [])];
  return [...(image.Entrypoint ?? []), ...(args ?? image.Cmd ?? [])];
}

/** Bind mounts of the container's volumeMounts and volumeDevices. */
export function mountsOf(container: Record<string, unknown>, volumes: VolumeMap): BindMount[] {
  const out: BindMount[] = [];
  const mounts = container['volumeMounts'];
  for (const m of Array.isArray(mounts) ? mounts.filter(isRecord) : []) {
    const vol = volumes.get(String(m['name']));
    if (vol === undefined || typeof m['mountPath'] !== 'string') continue;
    const sub = typeof m['subPath'] === 'string' && m['subPath'] !== '' ? m['subPath'] : undefined;
    out.push({
      source: sub === undefined ? vol.path : join(vol.path, sub),
      destination: m['mountPath'],
      readonly: m['readOnly'] === true,
    });
  }
  const devices = container['volumeDevices'];
  for (const d of Array.isArray(devices) ? devices.filter(isRecord) : []) {
    const vol = volumes.get(String(d['name']));
    if (vol !== undefined && typeof d['devicePath'] === 'string')
      out.push({ source: vol.path, destination: d['devicePath'] });
  }
  return out;
}

/**
 * Gives `fsGroup` the volume as the kubelet's SetVolumeOwnership does: group ownership, the
 * mode or-ed with 0660 (0440 when mounted read-only), and directories also executable and
 * setgid so that new files stay in the group. A Secret with `defaultMode: 0400` thus becomes
 * readable by the pod's non-root user, as on a cluster.
 */
async function applyFsGroup(path: string, gid: number, readonly: boolean): Promise<void> {
  const info = await lstat(path);
  if (info.isSymbolicLink()) return;
  await chown(path, info.uid, gid);
  const mask = (readonly ? 0o440 : 0o660) | (info.isDirectory() ? 0o2110 : 0);
  await chmod(path, (info.mode & 0o7777) | mask);
  if (info.isDirectory()) {
    for (const entry of await readdir(path)) await applyFsGroup(join(path, entry), gid, readonly);
  }
}

/**
 * The pod's /etc/hosts, as the kubelet writes one for every pod without hostNetwork: its name
 * and IP, and `localhost`. Pods share the host's network here, each on its own 127.x address,
 * so `localhost` is that address: what a container serves on localhost (the server of a
 * registry node pull) stays within its pod.
 */
async function writeHostsFile(l: ContainerLaunch): Promise<string> {
  const ip = getPath(l.pod, ['status', 'podIP']);
  const podIp = typeof ip === 'string' && ip !== '' ? ip : '127.0.0.1';
  const file = join(l.podDir, 'etc-hosts');
  await writeFile(
    file,
    [
      '# Kubernetes-managed hosts file.',
      `${podIp}\tlocalhost`,
      '::1\tlocalhost ip6-localhost ip6-loopback',
      `${podIp}\t${l.pod.metadata.name ?? 'pod'}`,
      '',
    ].join('\n'),
  );
  await chmod(file, 0o644);
  return file;
}

/** The exit code reported when runc itself ended by a signal (as a SIGKILLed container). */
const EXIT_CODE_UNKNOWN = 137;

/**
 * Where containers' images come from: one archive every container runs whatever its `image`, or
 * a node's image store resolving each container's `image` through a registry.
 */
export type ImageSource = { readonly archive: PodImage } | { readonly store: ImageStore };

/** Runs containers from the image under runc (see the module comment). */
export class RuncRuntime implements PodRuntime {
  readonly name = 'runc';
  readonly #images: ImageSource;
  readonly #records: ContainerRecord[] = [];

  constructor(images: ImageSource) {
    this.#images = images;
  }

  /** The container's image; throws ImagePullError as the kubelet reports a failed pull. */
  async #imageOf(container: Record<string, unknown>): Promise<{
    readonly rootfs: string;
    readonly config: ImageRuntimeConfig;
    readonly imageID: string;
  }> {
    if ('archive' in this.#images) return { ...this.#images.archive, imageID: '' };
    const name = typeof container['image'] === 'string' ? container['image'] : '';
    try {
      return await this.#images.store.image(name, pullPolicyOf(container));
    } catch (err) {
      if (err instanceof PullFailure) throw new ImagePullError(err.message, err.reason);
      throw err;
    }
  }

  records(): readonly ContainerRecord[] {
    return this.#records;
  }

  async start(l: ContainerLaunch): Promise<LaunchedContainer> {
    const image = await this.#imageOf(l.container);
    const config = image.config;
    const security = securityOf(l.pod, l.container, config);
    const env = containerEnv({
      api: l.api,
      pod: l.pod,
      container: l.container,
      volumes: l.volumes,
      terminationLog: l.terminationLog,
      home: l.podDir,
      paths: 'container',
      imageEnv: config.Env ?? [],
    });
    const argv = argvOf(l.container, config);
    if (argv.length === 0) throw new Error('no command specified');
    const limits = limitsOf(l.container);
    const mounts = mountsOf(l.container, l.volumes);
    if (security.fsGroup !== undefined) {
      for (const m of mounts) await applyFsGroup(m.source, security.fsGroup, m.readonly === true);
    }
    // The kubelet creates the message file for the container to write, whatever its user.
    await writeFile(l.terminationLog, '');
    await chmod(l.terminationLog, 0o666);
    const messagePath =
      typeof l.container['terminationMessagePath'] === 'string'
        ? l.container['terminationMessagePath']
        : PodPaths.TerminationLog;
    const hosts = await writeHostsFile(l);
    const workingDir = l.container['workingDir'];
    const started = await startContainer({
      rootfs: image.rootfs,
      args: argv,
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd: typeof workingDir === 'string' ? workingDir : (config.WorkingDir ?? '/'),
      uid: security.uid,
      gid: security.gid,
      additionalGids: security.additionalGids,
      readonlyRootfs: security.readOnlyRootFilesystem,
      capabilities: security.capabilities,
      noNewPrivileges: security.noNewPrivileges,
      mounts: [
        ...mounts,
        { source: l.terminationLog, destination: messagePath },
        { source: hosts, destination: '/etc/hosts', readonly: true },
      ],
      hostname: l.pod.metadata.name ?? 'pod',
      ...(limits.memoryBytes === undefined ? {} : { memoryLimitBytes: limits.memoryBytes }),
      ...(limits.cpuMillis === undefined ? {} : { cpuLimitMillis: limits.cpuMillis }),
      logFile: l.logFile,
    });
    const exited: Promise<ExitInfo> = started.exited.then((r) => {
      const exitCode = r.exitCode ?? EXIT_CODE_UNKNOWN;
      this.#records.push({
        namespace: l.pod.metadata.namespace ?? '',
        pod: l.pod.metadata.name ?? '',
        container: String(l.container['name']),
        exitCode,
        memoryLimitBytes: limits.memoryBytes,
        peakMemoryBytes: r.peakMemoryBytes,
        peakRssBytes: r.peakRssBytes,
        memoryLimitHits: r.memoryLimitHits,
      });
      return { exitCode, signal: undefined };
    });
    return {
      id: `runc://${started.id}`,
      imageID: image.imageID,
      exited,
      async stop(graceMs) {
        await started.kill(graceMs > 0 ? 'TERM' : 'KILL');
        const timer = setTimeout(() => void started.kill('KILL'), graceMs);
        try {
          return await exited;
        } finally {
          clearTimeout(timer);
        }
      },
    };
  }
}
