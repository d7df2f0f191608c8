// SPDX-License-Identifier: Apache-2.0
/**
 * The life of one pod on the sandbox node: wait for its volumes and config (ContainerCreating,
 * CreateContainerConfigError), run init containers in order, then the containers side by side,
 * restart them by restartPolicy with a small exponential back-off (CrashLoopBackOff), probe
 * readiness, and publish container states, restart counts, termination messages and the pod
 * phase to the API as the kubelet does.
 */
import { mkdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import { readTerminationMessage } from './container-process.js';
import type { ObjectApi } from './object-api.js';
import { getPath, isRecord, str, type KObject } from './object.js';
import {
  containerEnv,
  expandCommand,
  NotReadyError,
  prepareVolumes,
  type VolumeMap,
} from './pod-env.js';
import { ImagePullError, type LaunchedContainer, type PodRuntime } from './pod-runtime.js';
import type { ResourceType } from './resources.js';
import { recordEvent, type EventType } from './events.js';
import type { TokenIssuer } from './tokens.js';

/** The restart back-off: first delay, cap, and how long a run resets it. */
export interface RestartBackoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** The kubelet's: 10 s doubling up to 5 min, reset once a container ran for 10 min (2 × max). */
export const KUBELET_RESTART_BACKOFF: RestartBackoff = { initialMs: 10_000, maxMs: 300_000 };

/**
 * The delay before the next restart: the first delay after a run of at least twice the cap
 * (the kubelet forgets old crashes), else the previous delay doubled up to the cap.
 */
export function nextBackoff(
  previousMs: number | undefined,
  ranMs: number,
  backoff: RestartBackoff,
): number {
  if (previousMs === undefined || ranMs >= 2 * backoff.maxMs) return backoff.initialMs;
  return Math.min(previousMs * 2, backoff.maxMs);
}

/** Go's `time.Duration` text for whole milliseconds (`10s`, `1m20s`, `5m0s`, `250ms`). */
export function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const totalS = ms / 1000;
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const s = totalS % 60;
  const sText = `${Number.isInteger(s) ? s : s.toFixed(3).replace(/0+$/, '')}s`;
  if (h > 0) return `${h}h${m}m${sText}`;
  if (m > 0) return `${m}m${sText}`;
  return sText;
}
/** A container failing its liveness probe gets SIGKILL after at most this (tests stay quick). */
const MAX_LIVENESS_GRACE_MS = 5_000;

/** The kubelet's event for a failed pull (a runtime's message may already say it). */
function pullFailureText(image: string, err: ImagePullError): string {
  if (err.reason !== 'ErrImagePull' || err.message.startsWith('Failed to pull image'))
    return err.message;
  return `Failed to pull image "${image}": ${err.message}`;
}

/** How long ErrImagePull is shown before ImagePullBackOff (at most the back-off itself). */
const PULL_ERROR_SHOWN_MS = 1_000;
/** Probe period floor and ceiling, so tests see readiness quickly. */
const PROBE_MIN_MS = 200;
const PROBE_MAX_MS = 1_000;

type State = Record<string, unknown>;

interface ContainerRun {
  readonly spec: Record<string, unknown>;
  readonly name: string;
  state: State;
  lastState: State;
  restartCount: number;
  ready: boolean;
  running: LaunchedContainer | undefined;
  /** The runtime's ID of the current or last container (changes on every restart, as on a node). */
  containerId: string | undefined;
  /** The digest reference of the image the container ran. */
  imageID: string | undefined;
}

/** Something that wakes waiters. */
class Signal {
  #waiters: (() => void)[] = [];
  wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      if (ms !== undefined) setTimeout(resolve, ms);
    });
  }
  notify(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

async function probeOnce(url: string): Promise<boolean> {
  const req = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const r = req(url, { method: 'GET', rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) >= 200 && (res.statusCode ?? 500) < 400);
    });
    r.on('error', () => resolve(false));
    r.on('timeout', () => r.destroy());
    r.end();
  });
}

/** Options of {@link PodWorker}. */
export interface PodWorkerOptions {
  readonly api: ObjectApi;
  readonly podType: ResourceType;
  readonly pod: KObject;
  readonly dir: string;
  /** Runs the containers (local processes, or the image under runc). */
  readonly runtime: PodRuntime;
  readonly backoff: RestartBackoff;
  /** Issues projected service-account tokens. */
  readonly tokens: TokenIssuer;
  readonly log: Logger;
}

/** Runs one pod. */
export class PodWorker {
  readonly uid: string;
  readonly #o: PodWorkerOptions;
  readonly #ns: string;
  readonly #name: string;
  readonly #init: ContainerRun[];
  readonly #main: ContainerRun[];
  readonly #changed = new Signal();
  #stopping = false;
  #initialized = false;
  #done: Promise<void> | undefined;

  constructor(opts: PodWorkerOptions) {
    this.#o = opts;
    this.uid = opts.pod.metadata.uid ?? '';
    this.#ns = opts.pod.metadata.namespace ?? '';
    this.#name = opts.pod.metadata.name ?? '';
    const runs = (field: string): ContainerRun[] => {
      const list = getPath(opts.pod, ['spec', field]);
      return (Array.isArray(list) ? list.filter(isRecord) : []).map((spec) => ({
        spec,
        name: String(spec['name']),
        state: { waiting: { reason: 'ContainerCreating' } },
        lastState: {},
        restartCount: 0,
        ready: false,
        running: undefined,
        containerId: undefined,
        imageID: undefined,
      }));
    };
    this.#init = runs('initContainers');
    this.#main = runs('containers');
    mkdirSync(opts.dir, { recursive: true });
  }

  /** True once stop() was called. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Host file of a container's log. */
  logFile(container: string | undefined): string {
    return join(this.#o.dir, `${container ?? this.#main[0]?.name ?? 'main'}.log`);
  }

  /** Starts the pod; resolves when it has finished or was stopped. */
  run(): Promise<void> {
    this.#done ??= this.#run().catch((err: unknown) => {
      this.#o.log.error('pod worker failed', {
        pod: `${this.#ns}/${this.#name}`,
        error: err instanceof Error ? err.stack : String(err),
      });
    });
    return this.#done;
  }

  /** Something the pod may be waiting for changed (a Secret, ConfigMap or claim). */
  poke(): void {
    this.#changed.notify();
  }

  /** Kills the containers (SIGTERM, SIGKILL after `graceMs`) and waits for the worker to end. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#changed.notify();
    await Promise.all(
      [...this.#init, ...this.#main].map(async (c) => {
        if (c.running !== undefined) await c.running.stop(graceMs);
      }),
    );
    await this.#done;
  }

  #pod(): KObject | undefined {
    return this.#o.api.find(this.#o.podType, this.#ns, this.#name);
  }

  async #run(): Promise<void> {
    let volumes: VolumeMap | undefined;
    while (volumes === undefined && !this.#stopping) {
      const pod = this.#pod();
      if (pod === undefined) return;
      try {
        volumes = prepareVolumes({ api: this.#o.api, tokens: this.#o.tokens }, pod, this.#o.dir);
      } catch (err) {
        if (!(err instanceof NotReadyError)) throw err;
        for (const c of [...this.#init, ...this.#main])
          c.state = { waiting: { reason: err.reason, message: err.message } };
        this.#publish();
        await this.#changed.wait(1000);
      }
    }
    if (volumes === undefined) return;
    for (const c of this.#init) {
      const code = await this.#runContainer(c, volumes, true);
      if (code !== 0 || this.#stopping) {
        this.#publish();
        return;
      }
    }
    this.#initialized = true;
    await Promise.all(this.#main.map((c) => this.#runContainer(c, volumes, false)));
    this.#publish();
  }

  #restartPolicy(init: boolean): string {
    const p = str(getPath(this.#o.pod, ['spec', 'restartPolicy']), 'Always');
    return init && p === 'Always' ? 'OnFailure' : p;
  }

  /** Runs a container until it ends for good; returns its last exit code. */
  async #runContainer(c: ContainerRun, volumes: VolumeMap, init: boolean): Promise<number> {
    const { maxMs } = this.#o.backoff;
    let backoff: number | undefined;
    let pullBackoff: number | undefined;
    for (;;) {
      if (this.#stopping) return -1;
      const pod = this.#pod();
      if (pod === undefined) return -1;
      const termFile = join(this.#o.dir, `${c.name}.termination-log`);
      const logFile = this.logFile(c.name);
      const startedAt = now();
      const startedMs = Date.now();
      try {
        // $(VAR) in command and args, from the container's environment as it runs.
        const env = containerEnv({
          api: this.#o.api,
          pod,
          container: c.spec,
          volumes,
          terminationLog: termFile,
          home: this.#o.dir,
          paths: 'container',
        });
        c.running = await this.#o.runtime.start({
          api: this.#o.api,
          pod,
          container: expandCommand(c.spec, env),
          volumes,
          podDir: this.#o.dir,
          terminationLog: termFile,
          logFile,
        });
      } catch (err) {
        if (err instanceof NotReadyError) {
          c.state = { waiting: { reason: err.reason, message: err.message } };
          this.#publish();
          await this.#changed.wait(1000);
          continue;
        }
        if (err instanceof ImagePullError) {
          pullBackoff = await this.#pullFailed(c, err, pullBackoff);
          continue;
        }
        c.state = {
          waiting: {
            reason: 'RunContainerError',
            message: err instanceof Error ? err.message : String(err),
          },
        };
        this.#publish();
        await this.#changed.wait(maxMs);
        continue;
      }
      pullBackoff = undefined;
      c.containerId = c.running.id;
      c.imageID = c.running.imageID;
      c.state = { running: { startedAt } };
      c.ready = c.spec['readinessProbe'] === undefined;
      this.#publish();
      const probing = Promise.all([this.#probe(c, pod), this.#liveness(c, pod, c.running)]);
      const exit = await c.running.exited;
      c.running = undefined;
      c.ready = false;
      await probing;
      const message = readTerminationMessage({
        file: termFile,
        logFile,
        policy: c.spec['terminationMessagePolicy'],
        exitCode: exit.exitCode,
      });
      const terminated = {
        exitCode: exit.exitCode,
        ...(exit.signal === undefined ? {} : { signal: exit.exitCode - 128 }),
        reason: exit.exitCode === 0 ? 'Completed' : 'Error',
        ...(message === undefined ? {} : { message }),
        startedAt,
        finishedAt: now(),
        containerID: c.containerId,
      };
      const policy = this.#restartPolicy(init);
      const restart =
        !this.#stopping && (policy === 'Always' || (policy === 'OnFailure' && exit.exitCode !== 0));
      if (!restart) {
        c.state = { terminated };
        this.#publish();
        return exit.exitCode;
      }
      c.lastState = { terminated };
      c.restartCount += 1;
      backoff = nextBackoff(backoff, Date.now() - startedMs, this.#o.backoff);
      c.state = {
        waiting: {
          reason: 'CrashLoopBackOff',
          message: `back-off ${goDuration(backoff)} restarting failed container=${c.name} pod=${this.#name}_${this.#ns}(${this.uid})`,
        },
      };
      this.#publish();
      await this.#waitBackoff(backoff);
    }
  }

  /**
   * Shows a failed pull and waits before the next attempt; returns the pull back-off. As the
   * kubelet: ErrImagePull, then ImagePullBackOff until the next attempt; other reasons wait.
   */
  async #pullFailed(
    c: ContainerRun,
    err: ImagePullError,
    previousMs: number | undefined,
  ): Promise<number | undefined> {
    c.state = { waiting: { reason: err.reason, message: err.message } };
    this.#publish();
    const image = str(c.spec['image']);
    this.#event('Warning', 'Failed', pullFailureText(image, err));
    this.#event('Warning', 'Failed', `Error: ${err.reason}`);
    if (err.reason !== 'ErrImagePull') {
      await this.#changed.wait(this.#o.backoff.initialMs);
      return previousMs;
    }
    const delay = nextBackoff(previousMs, 0, this.#o.backoff);
    const shown = Math.min(PULL_ERROR_SHOWN_MS, delay);
    await this.#waitBackoff(shown);
    c.state = {
      waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` },
    };
    this.#publish();
    this.#event('Normal', 'BackOff', `Back-off pulling image "${image}"`);
    this.#event('Warning', 'Failed', 'Error: ImagePullBackOff');
    await this.#waitBackoff(delay - shown);
    return delay;
  }

  /** Records a kubelet event about the pod. */
  #event(type: EventType, reason: string, message: string): void {
    const pod = this.#pod();
    if (pod !== undefined)
      recordEvent(this.#o.api, pod, { type, reason, message, component: 'kubelet' });
  }

  /** Sleeps through a back-off; only stopping the pod cuts it short (not other changes). */
  async #waitBackoff(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.#stopping && Date.now() < until) await this.#changed.wait(until - Date.now());
  }

  /** Polls the readiness probe while the container runs. */
  async #probe(c: ContainerRun, pod: KObject): Promise<void> {
    const probe = c.spec['readinessProbe'];
    if (!isRecord(probe)) return;
    const get = probe['httpGet'];
    const ip = str(getPath(pod, ['status', 'podIP']), '127.0.0.1');
    const periodMs = Math.min(
      PROBE_MAX_MS,
      Math.max(PROBE_MIN_MS, Number(probe['periodSeconds'] ?? 1) * 1000),
    );
    await new Promise((r) =>
      setTimeout(r, Math.min(PROBE_MAX_MS, Number(probe['initialDelaySeconds'] ?? 0) * 1000)),
    );
    while (c.running !== undefined && !this.#stopping) {
      let ok = true;
      if (isRecord(get)) {
        const scheme = str(get['scheme'], 'HTTP').toLowerCase();
        const port =
          typeof get['port'] === 'number' ? get['port'] : this.#namedPort(c, String(get['port']));
        ok = await probeOnce(`${scheme}://${ip}:${port}${str(get['path'], '/')}`);
      }
      if (ok !== c.ready && c.running !== undefined) {
        c.ready = ok;
        this.#publish();
      }
      await new Promise((r) => setTimeout(r, periodMs));
    }
  }

  /**
   * Kills the container (to be restarted by its policy) once its liveness probe failed
   * `failureThreshold` times in a row, probing at the probe's own delay and period: unlike
   * readiness, these are not shortened, so a slow start is not taken for a hung process.
   */
  async #liveness(c: ContainerRun, pod: KObject, run: LaunchedContainer): Promise<void> {
    const probe = c.spec['livenessProbe'];
    const get = isRecord(probe) ? probe['httpGet'] : undefined;
    if (!isRecord(probe) || !isRecord(get)) return;
    let timer: NodeJS.Timeout | undefined;
    const ended = run.exited.then(() => true);
    const sleep = (ms: number): Promise<boolean> =>
      Promise.race([
        ended,
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), ms);
        }),
      ]).finally(() => clearTimeout(timer));
    if (await sleep(Number(probe['initialDelaySeconds'] ?? 0) * 1000)) return;
    const periodMs = Math.max(1000, Number(probe['periodSeconds'] ?? 10) * 1000);
    const threshold = Math.max(1, Number(probe['failureThreshold'] ?? 3));
    const ip = str(getPath(pod, ['status', 'podIP']), '127.0.0.1');
    const scheme = str(get['scheme'], 'HTTP').toLowerCase();
    const port =
      typeof get['port'] === 'number' ? get['port'] : this.#namedPort(c, String(get['port']));
    const url = `${scheme}://${ip}:${port}${str(get['path'], '/')}`;
    let failures = 0;
    while (c.running === run && !this.#stopping) {
      failures = (await probeOnce(url)) ? 0 : failures + 1;
      if (failures >= threshold && c.running === run && !this.#stopping) {
        recordEvent(this.#o.api, pod, {
          type: 'Warning',
          reason: 'Unhealthy',
          message: `Liveness probe failed: ${url}`,
          component: 'kubelet',
        });
        const graceS = Number(getPath(pod, ['spec', 'terminationGracePeriodSeconds']) ?? 30);
        await run.stop(Math.min(graceS * 1000, MAX_LIVENESS_GRACE_MS));
        return;
      }
      if (await sleep(periodMs)) return;
    }
  }

  #namedPort(c: ContainerRun, name: string): number {
    const ports = c.spec['ports'];
    const p = (Array.isArray(ports) ? ports.filter(isRecord) : []).find((x) => x['name'] === name);
    return Number(p?.['containerPort'] ?? name);
  }

  #phase(): string {
    const running = (c: ContainerRun): boolean =>
      'running' in c.state || (c.state['waiting'] !== undefined && c.restartCount > 0);
    const failed = (c: ContainerRun): boolean =>
      'terminated' in c.state && (c.state['terminated'] as { exitCode: number }).exitCode !== 0;
    if (this.#init.some(failed) && this.#restartPolicy(true) === 'Never') return 'Failed';
    if (!this.#initialized) return 'Pending';
    if (this.#main.every((c) => 'terminated' in c.state))
      return this.#main.some(failed) ? 'Failed' : 'Succeeded';
    if (this.#main.some((c) => running(c) || 'terminated' in c.state)) return 'Running';
    return 'Pending';
  }

  #status(c: ContainerRun): Record<string, unknown> {
    return {
      name: c.name,
      image: str(c.spec['image']),
      imageID: c.imageID ?? '',
      ready: c.ready,
      started: 'running' in c.state,
      restartCount: c.restartCount,
      state: c.state,
      lastState: c.lastState,
      ...('running' in c.state || 'terminated' in c.state ? { containerID: c.containerId } : {}),
    };
  }

  /** Writes the pod's status from the containers' states. */
  #publish(): void {
    const pod = this.#pod();
    if (pod === undefined || pod.metadata.uid !== this.uid) return;
    const old = isRecord(pod['status']) ? pod['status'] : {};
    const phase = this.#phase();
    const allReady = this.#main.every((c) => c.ready);
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    const oldConds = Array.isArray(old['conditions']) ? old['conditions'].filter(isRecord) : [];
    const cond = (type: string, ok: boolean, reason?: string): Record<string, unknown> => {
      const prev = oldConds.find((x) => x['type'] === type);
      const status = ok ? 'True' : 'False';
      return {
        type,
        status,
        lastProbeTime: null,
        lastTransitionTime: prev?.['status'] === status ? prev['lastTransitionTime'] : now(),
        ...(reason === undefined ? {} : { reason }),
      };
    };
    const status = {
      ...old,
      phase,
      conditions: [
        cond('PodScheduled', true),
        cond('Initialized', this.#initialized || terminal),
        cond(
          'ContainersReady',
          allReady && !terminal,
          terminal ? 'PodCompleted' : allReady ? undefined : 'ContainersNotReady',
        ),
        cond(
          'Ready',
          allReady && !terminal,
          terminal ? 'PodCompleted' : allReady ? undefined : 'ContainersNotReady',
        ),
      ],
      ...(this.#init.length > 0
        ? { initContainerStatuses: this.#init.map((c) => this.#status(c)) }
        : {}),
      containerStatuses: this.#main.map((c) => this.#status(c)),
    };
    try {
      this.#o.api.update(
        this.#o.podType,
        this.#ns,
        this.#name,
        { ...pod, status },
        { subresource: 'status' },
      );
    } catch (err) {
      this.#o.log.debug('status update failed', {
        pod: this.#name,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
