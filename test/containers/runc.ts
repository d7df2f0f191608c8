// SPDX-License-Identifier: Apache-2.0
/**
 * Runs one process in a container with `runc`, the way a kubelet would run a pod's container:
 * an OCI runtime bundle over an unpacked root filesystem (read-only by default), a user and
 * group, bind mounts (the pod's volumes), environment, a cgroup-v1 memory limit, and the host's
 * network namespace (servers on 127.0.0.1 stay reachable). The bundle sets no `rlimits`: root
 * here lacks CAP_SYS_RESOURCE, and runtimes that always set one (podman) cannot start.
 *
 * The limit is set both on the container's cgroup and on a parent cgroup made here
 * (`<memory>/cdi-containers/<id>`): runc removes the container's cgroup when the process exits,
 * the parent keeps `memory.max_usage_in_bytes` (page cache included, as in a pod) for the
 * result. Everything (container, bundle, state, cgroups) is removed whatever happens.
 *
 * `runContainer` runs to completion and captures the output (the image test);
 * `startContainer` returns at once with a handle to signal and await the container, its output
 * appended to a log file (the sandbox's pods).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const CGROUP_ROOT = '/sys/fs/cgroup';
const CGROUP_PARENT = 'cdi-containers';
/** How often memory.stat is sampled for the peak RSS (it keeps no maximum of its own). */
const RSS_SAMPLE_MS = 100;
/** Captured output per stream; a container printing more keeps only the first bytes. */
const OUTPUT_LIMIT_BYTES = 4 << 20;
/** The CFS period of a CPU limit, as the kubelet sets it. */
const CPU_PERIOD_US = 100_000;

/** A host path mounted into the container (a pod volume). */
export interface BindMount {
  readonly source: string;
  readonly destination: string;
  readonly readonly?: boolean;
}

/** What to run and how. */
export interface ContainerSpec {
  /** An unpacked root filesystem (see unpackImage); several containers may share one. */
  readonly rootfs: string;
  /** The full argv (an image's Entrypoint followed by its arguments). */
  readonly args: readonly string[];
  readonly env?: readonly string[];
  readonly cwd?: string;
  /** Numeric user and group (default 0:0). */
  readonly uid?: number;
  readonly gid?: number;
  readonly additionalGids?: readonly number[];
  /** Default true, as `readOnlyRootFilesystem: true`. */
  readonly readonlyRootfs?: boolean;
  readonly mounts?: readonly BindMount[];
  /** cgroup-v1 memory limit in bytes (none by default). */
  readonly memoryLimitBytes?: number;
  /** cgroup-v1 CPU limit in thousandths of a CPU (a CFS quota over a 100 ms period). */
  readonly cpuLimitMillis?: number;
  /** Hostname inside the container (default `cdi`). */
  readonly hostname?: string;
  /**
   * Capabilities (`CAP_CHOWN`, ...) of the bounding, permitted and effective sets (default none).
   * As under containerd, a non-root user loses them at exec: they matter to root only.
   */
  readonly capabilities?: readonly string[];
  /** The no_new_privs bit (default true, as `allowPrivilegeEscalation: false`). */
  readonly noNewPrivileges?: boolean;
  /** Killed (SIGKILL) after this long. */
  readonly timeoutMs: number;
}

/** What startContainer runs: a spec whose output goes to a log file, with no time limit. */
export interface StartSpec extends Omit<ContainerSpec, 'timeoutMs'> {
  /** stdout and stderr are appended here. */
  readonly logFile: string;
}

/** A started container. */
export interface RunningContainer {
  readonly id: string;
  /** Resolves once the container has exited and every trace of it is removed. */
  readonly exited: Promise<ContainerResult>;
  /** Sends a signal to the container's processes (nothing once it has exited). */
  kill(signal: 'TERM' | 'KILL'): Promise<void>;
}

/** How it ended. */
export interface ContainerResult {
  /** The process's exit code; null when it was killed by a signal. */
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
  /** `memory.max_usage_in_bytes` of the container's cgroup (page cache included). */
  readonly peakMemoryBytes: number | undefined;
  /**
   * The highest `total_rss` (anonymous memory: heaps, buffers; no page cache) seen in the
   * cgroup's memory.stat, sampled while the container ran.
   */
  readonly peakRssBytes: number | undefined;
  /** `memory.failcnt`: how many times usage hit the limit (reclaim, or OOM when it failed). */
  readonly memoryLimitHits: number | undefined;
  readonly durationMs: number;
}

function bundleConfig(spec: Omit<ContainerSpec, 'timeoutMs'>, cgroupsPath: string): object {
  const mounts = [
    { destination: '/proc', type: 'proc', source: 'proc' },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
    },
    {
      destination: '/dev/mqueue',
      type: 'mqueue',
      source: 'mqueue',
      options: ['nosuid', 'noexec', 'nodev'],
    },
    ...(spec.mounts ?? []).map((m) => ({
      destination: m.destination,
      type: 'bind',
      source: m.source,
      options: ['rbind', 'nosuid', 'nodev', m.readonly === true ? 'ro' : 'rw'],
    })),
  ];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: spec.uid ?? 0, gid: spec.gid ?? 0, additionalGids: spec.additionalGids ?? [] },
      args: spec.args,
      env: spec.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: spec.cwd ?? '/',
      noNewPrivileges: spec.noNewPrivileges ?? true,
      // No inheritable or ambient set, as containerd since CVE-2022-24769.
      capabilities: {
        bounding: spec.capabilities ?? [],
        effective: spec.capabilities ?? [],
        inheritable: [],
        permitted: spec.capabilities ?? [],
        ambient: [],
      },
    },
    root: { path: spec.rootfs, readonly: spec.readonlyRootfs ?? true },
    hostname: spec.hostname ?? 'cdi',
    mounts,
    linux: {
      // No network namespace: the host's, so 127.0.0.1 servers of the test are reachable.
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      cgroupsPath,
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        ...(spec.memoryLimitBytes === undefined
          ? {}
          : { memory: { limit: spec.memoryLimitBytes } }),
        ...(spec.cpuLimitMillis === undefined
          ? {}
          : {
              cpu: {
                period: CPU_PERIOD_US,
                quota: Math.max(1000, Math.round((spec.cpuLimitMillis * CPU_PERIOD_US) / 1000)),
              },
            }),
      },
      maskedPaths: [
        '/proc/kcore',
        '/proc/keys',
        '/proc/timer_list',
        '/proc/sched_debug',
        '/sys/firmware',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** Samples `total_rss` of a cgroup's memory.stat until stopped; returns the highest value. */
function sampleRss(cgroup: string): () => number | undefined {
  let peak: number | undefined;
  const sample = (): void => {
    void readFile(join(cgroup, 'memory.stat'), 'utf8').then(
      (text) => {
        const rss = /^total_rss (\d+)$/m.exec(text)?.[1];
        if (rss !== undefined) peak = Math.max(peak ?? 0, Number(rss));
      },
      () => undefined,
    );
  };
  const timer = setInterval(sample, RSS_SAMPLE_MS);
  return () => {
    clearInterval(timer);
    return peak;
  };
}

async function readCounter(file: string): Promise<number | undefined> {
  try {
    return Number((await readFile(file, 'utf8')).trim());
  } catch {
    return undefined;
  }
}

/** Removes `<controller>/cdi-containers/<id>` in every cgroup-v1 hierarchy runc populated. */
async function removeCgroups(id: string): Promise<void> {
  for (const controller of await readdir(CGROUP_ROOT).catch(() => [])) {
    const dir = join(CGROUP_ROOT, controller, CGROUP_PARENT, id);
    if (!existsSync(dir)) continue;
    await rmdir(join(dir, 'ctr')).catch(() => undefined);
    await rmdir(dir).catch(() => undefined);
  }
}

async function runc(state: string, args: readonly string[]): Promise<void> {
  await execFileAsync('runc', ['--root', state, ...args]).catch(() => undefined);
}

function collect(stream: NodeJS.ReadableStream, into: Buffer[]): void {
  let size = 0;
  stream.on('data', (chunk: Buffer) => {
    if (size < OUTPUT_LIMIT_BYTES) into.push(chunk.subarray(0, OUTPUT_LIMIT_BYTES - size));
    size += chunk.length;
  });
}

/** Containers started and not yet removed; force-deleted if the process exits first. */
const live = new Map<string, string>();
let exitHookInstalled = false;

function track(id: string, state: string): void {
  live.set(id, state);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: no container may outlive the process that ran it.
  process.once('exit', () => {
    for (const [cid, root] of live) {
      try {
        execFileSync('runc', ['--root', root, 'delete', '--force', cid], { stdio: 'ignore' });
      } catch {
        // Already gone.
      }
    }
  });
}

interface Launched {
  readonly id: string;
  readonly state: string;
  readonly exited: Promise<ContainerResult>;
}

/** Writes the bundle and starts `runc run`; `exited` resolves after the clean-up. */
async function launch(
  spec: Omit<ContainerSpec, 'timeoutMs'>,
  stdio: { readonly logFile: string } | { readonly stdout: Buffer[]; readonly stderr: Buffer[] },
): Promise<Launched> {
  const id = `cdi-${process.pid}-${randomBytes(4).toString('hex')}`;
  const work = await mkdtemp(join(tmpdir(), 'cdi-runc-'));
  const bundle = join(work, 'bundle');
  const state = join(work, 'state');
  const memoryParent = join(CGROUP_ROOT, 'memory', CGROUP_PARENT, id);
  const started = Date.now();
  const cleanUp = async (): Promise<void> => {
    await runc(state, ['delete', '--force', id]);
    live.delete(id);
    await removeCgroups(id);
    await rm(work, { recursive: true, force: true });
  };
  let child: ChildProcess;
  try {
    await mkdir(bundle, { recursive: true });
    await mkdir(memoryParent, { recursive: true });
    if (spec.memoryLimitBytes !== undefined) {
      await writeFile(join(memoryParent, 'memory.limit_in_bytes'), String(spec.memoryLimitBytes));
    }
    await writeFile(
      join(bundle, 'config.json'),
      JSON.stringify(bundleConfig(spec, `/${CGROUP_PARENT}/${id}/ctr`), null, 2),
    );
    const args = ['--root', state, 'run', '--bundle', bundle, id];
    if ('logFile' in stdio) {
      const fd = openSync(stdio.logFile, 'a');
      try {
        child = spawn('runc', args, { stdio: ['ignore', fd, fd] });
      } finally {
        closeSync(fd);
      }
    } else {
      const piped = spawn('runc', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      collect(piped.stdout, stdio.stdout);
      collect(piped.stderr, stdio.stderr);
      child = piped;
    }
    track(id, state);
  } catch (err) {
    await cleanUp();
    throw err;
  }
  const running = child;
  const stopSampling = sampleRss(memoryParent);
  const exited = new Promise<number | null>((resolve, reject) => {
    running.on('error', reject);
    running.on('close', (code) => resolve(code));
  })
    .then(async (exitCode) => ({
      exitCode,
      timedOut: false,
      stdout: '',
      stderr: '',
      peakMemoryBytes: await readCounter(join(memoryParent, 'memory.max_usage_in_bytes')),
      peakRssBytes: stopSampling(),
      memoryLimitHits: await readCounter(join(memoryParent, 'memory.failcnt')),
      durationMs: Date.now() - started,
    }))
    .finally(cleanUp);
  return { id, state, exited };
}

/** Starts `spec` and returns at once (see the module comment). */
export async function startContainer(spec: StartSpec): Promise<RunningContainer> {
  const { id, state, exited } = await launch(spec, { logFile: spec.logFile });
  let done = false;
  void exited.finally(() => {
    done = true;
  });
  return {
    id,
    exited,
    async kill(signal) {
      if (!done) await runc(state, ['kill', '--all', id, signal]);
    },
  };
}

/** Runs `spec` to completion and removes every trace of it. */
export async function runContainer(spec: ContainerSpec): Promise<ContainerResult> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const { id, state, exited } = await launch(spec, { stdout, stderr });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void runc(state, ['kill', id, 'KILL']);
  }, spec.timeoutMs);
  const result = await exited.finally(() => clearTimeout(timer));
  return {
    ...result,
    timedOut,
    stdout: Buffer.concat(stdout).toString('utf8'),
    stderr: Buffer.concat(stderr).toString('utf8'),
  };
}
