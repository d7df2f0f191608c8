// SPDX-License-Identifier: Apache-2.0
/**
 * How the sandbox's kubelet runs one container of a pod: the contract between the pod worker
 * (life cycle, restarts, status) and a runtime (start, wait, stop), and the `process` runtime,
 * which runs the container's command as a local process (`cdi` from dist/, or a shell) with the
 * in-pod paths rewritten to host paths. The `runc` runtime (pod-runtime-runc.ts) runs the image.
 */
import {
  resolveProgram,
  startProcess,
  stopProcess,
  waitExit,
  type ExitInfo,
} from './container-process.js';
import type { ObjectApi } from './object-api.js';
import { getPath, isRecord, type KObject } from './object.js';
import { containerEnv, containerPaths, type VolumeMap } from './pod-env.js';

/** What a runtime needs to start one container. */
export interface ContainerLaunch {
  readonly api: ObjectApi;
  readonly pod: KObject;
  readonly container: Record<string, unknown>;
  readonly volumes: VolumeMap;
  /** The pod's directory on the host. */
  readonly podDir: string;
  /** Host file standing for the container's terminationMessagePath. */
  readonly terminationLog: string;
  /** Host file the container's output is appended to. */
  readonly logFile: string;
}

/** A started container. */
export interface LaunchedContainer {
  /** The container ID of the pod's status (`sandbox://PID`, `runc://ID`). */
  readonly id: string;
  /** The status's `imageID` (`<repo>@sha256:...`), empty when the image was not pulled. */
  readonly imageID?: string;
  readonly exited: Promise<ExitInfo>;
  /** SIGTERM, SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs: number): Promise<ExitInfo>;
}

/** What the runtime learnt of a container that ended (peak memory only where measured). */
export interface ContainerRecord {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  readonly exitCode: number;
  readonly memoryLimitBytes: number | undefined;
  /** `memory.max_usage_in_bytes` of the container's cgroup (page cache included). */
  readonly peakMemoryBytes: number | undefined;
  /** The highest `total_rss` sampled (heaps and buffers, no page cache). */
  readonly peakRssBytes: number | undefined;
  /** `memory.failcnt`: how often usage reached the limit and was reclaimed. */
  readonly memoryLimitHits: number | undefined;
}

/** The kubelet's waiting reasons for an image it cannot provide. */
export type ImagePullReason = 'ErrImagePull' | 'ErrImageNeverPull' | 'InvalidImageName';

/**
 * The image cannot be provided: ErrImagePull is retried after a back-off (ImagePullBackOff),
 * the other reasons when something changes.
 */
export class ImagePullError extends Error {
  override readonly name = 'ImagePullError';
  constructor(
    message: string,
    readonly reason: ImagePullReason = 'ErrImagePull',
  ) {
    super(message);
  }
}

/** A pod runtime. */
export interface PodRuntime {
  readonly name: 'process' | 'runc';
  /**
   * Starts a container. Throws NotReadyError (config not ready: the pod waits),
   * ImagePullError, or anything else for RunContainerError.
   */
  start(launch: ContainerLaunch): Promise<LaunchedContainer>;
  /** Containers that ended, oldest first. */
  records(): readonly ContainerRecord[];
}

function rewriteArgs(args: readonly string[], mounts: readonly [string, string][]): string[] {
  return args.map((a) => {
    for (const [inPod, host] of mounts) {
      if (a === inPod) return host;
      if (a.startsWith(`${inPod}/`)) return host + a.slice(inPod.length);
    }
    return a;
  });
}

/** The init containers and containers of a pod. */
function podContainers(pod: KObject): Record<string, unknown>[] {
  const list = (field: string): Record<string, unknown>[] => {
    const value = getPath(pod, ['spec', field]);
    return Array.isArray(value) ? value.filter(isRecord) : [];
  };
  return [...list('initContainers'), ...list('containers')];
}

/** Runs containers as local processes (see the module comment). */
export class ProcessRuntime implements PodRuntime {
  readonly name = 'process';
  readonly #repoRoot: string;
  readonly #records: ContainerRecord[] = [];

  constructor(repoRoot: string) {
    this.#repoRoot = repoRoot;
  }

  records(): readonly ContainerRecord[] {
    return this.#records;
  }

  async start(l: ContainerLaunch): Promise<LaunchedContainer> {
    // A pod that needs an image pulled (a registry node pull's disk image) cannot run here at
    // all: its init container is refused before it runs, with the reason.
    for (const other of podContainers(l.pod)) {
      const refused = resolveProgram(other, this.#repoRoot);
      if ('pullError' in refused) {
        throw new ImagePullError(
          `${refused.pullError}; images are pulled only by the runc pod runtime ` +
            '(--pod-runtime runc --image-source registry), which registry pullMethod node needs',
        );
      }
    }
    const program = resolveProgram(l.container, this.#repoRoot);
    if ('pullError' in program) throw new ImagePullError(program.pullError);
    const env = containerEnv({
      api: l.api,
      pod: l.pod,
      container: l.container,
      volumes: l.volumes,
      terminationLog: l.terminationLog,
      home: l.podDir,
    });
    const mounts = containerPaths(l.container, l.volumes, l.terminationLog);
    // `cdi` runs as node + the checkout's dist/cmd/cdi.js: that host path is never an in-pod path,
    // even when the checkout lives under a directory a volume covers (such as /tmp).
    const [entry, ...rest] = program.args;
    const args =
      program.file === process.execPath && entry !== undefined
        ? [entry, ...rewriteArgs(rest, mounts)]
        : rewriteArgs(program.args, mounts);
    const child = await startProcess({
      program: { file: program.file, args },
      env,
      cwd: l.podDir,
      logFile: l.logFile,
    });
    const exited = waitExit(child).then((exit) => {
      this.#records.push({
        namespace: l.pod.metadata.namespace ?? '',
        pod: l.pod.metadata.name ?? '',
        container: String(l.container['name']),
        exitCode: exit.exitCode,
        memoryLimitBytes: undefined,
        peakMemoryBytes: undefined,
        peakRssBytes: undefined,
        memoryLimitHits: undefined,
      });
      return exit;
    });
    return {
      id: `sandbox://${child.pid ?? 0}`,
      exited,
      stop: (graceMs) => stopProcess(child, graceMs),
    };
  }
}
