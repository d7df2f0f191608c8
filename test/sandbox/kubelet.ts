// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox node's scheduler and kubelet. A new pod is scheduled to `sandbox-node` once every
 * claim it uses is bound (WaitForFirstConsumer claims are bound by the provisioner as soon as the
 * pod appears), gets its own 127.A.x.y address (A random per sandbox), and is handed to a {@link PodWorker}. Deleting a
 * pod stops its processes (SIGTERM, then SIGKILL after the grace period, capped for tests) before
 * the pod object goes away.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import { NODE_NAME, Types, type AddressPool } from './cluster.js';
import { recordEvent } from './events.js';
import type { ObjectApi } from './object-api.js';
import { clone, getPath, isRecord, type KObject } from './object.js';
import { PodWorker, type RestartBackoff } from './pod-worker.js';
import type { PodRuntime } from './pod-runtime.js';
import { podClaims } from './provisioner.js';
import type { ResourceType } from './resources.js';
import type { TokenIssuer } from './tokens.js';
import { SweepLoop } from './sweep-loop.js';

/** Options of {@link Kubelet}. */
export interface KubeletOptions {
  readonly api: ObjectApi;
  /** Where pod directories (volumes, logs, termination messages) live. */
  readonly dataDir: string;
  /** Runs the pods' containers. */
  readonly runtime: PodRuntime;
  readonly podPool: AddressPool;
  /** Restart back-off of crashing containers. */
  readonly backoff: RestartBackoff;
  /** Issues projected service-account tokens. */
  readonly tokens: TokenIssuer;
  readonly log: Logger;
}

/** The grace period is capped so tests and Ctrl-C stay quick. */
const MAX_GRACE_MS = 5_000;

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The kubelet. */
export class Kubelet {
  readonly #o: KubeletOptions;
  readonly #podType: ResourceType;
  readonly #pvcType: ResourceType;
  readonly #workers = new Map<string, PodWorker>();
  readonly #dirs = new Map<string, string>();
  readonly #loop: SweepLoop;

  constructor(opts: KubeletOptions) {
    this.#o = opts;
    const pods = opts.api.types.get(Types.Pods);
    const pvcs = opts.api.types.get(Types.Pvcs);
    if (pods === undefined || pvcs === undefined) throw new Error('core types missing');
    this.#podType = pods;
    this.#pvcType = pvcs;
    this.#loop = new SweepLoop({
      sweep: () => this.#sync(),
      delayMs: 5,
      log: opts.log,
      failure: 'kubelet sync failed',
      level: 'warn',
      retry: false,
    });
  }

  /** Starts following pods and what they depend on. */
  start(): void {
    const watched = new Set<string>([
      Types.Pods,
      Types.Pvcs,
      Types.Pvs,
      Types.Secrets,
      Types.ConfigMaps,
    ]);
    this.#loop.follow(this.#o.api.store, (e) => {
      if (!watched.has(e.typeKey)) return false;
      if (e.typeKey !== Types.Pods) for (const w of this.#workers.values()) w.poke();
      return true;
    });
    this.#loop.schedule();
  }

  /** Stops every pod's processes. */
  async stop(): Promise<void> {
    this.#loop.stop();
    await Promise.all([...this.#workers.values()].map((w) => w.stop(1000)));
    this.#workers.clear();
  }

  /** Host file of a container's log, for `kubectl logs`. */
  logPath(namespace: string, name: string, container: string | undefined): string | undefined {
    const pod = this.#o.api.find(this.#podType, namespace, name);
    const w = pod === undefined ? undefined : this.#workers.get(pod.metadata.uid ?? '');
    if (w !== undefined) return w.logFile(container);
    const dir = this.#dirs.get(pod?.metadata.uid ?? '');
    if (dir === undefined) return undefined;
    const first = getPath(pod, ['spec', 'containers', '0', 'name']);
    return join(dir, `${container ?? (typeof first === 'string' ? first : 'main')}.log`);
  }

  #sync(): void {
    const pods = this.#o.api.list(this.#podType, undefined).items;
    const seen = new Set<string>();
    for (const pod of pods) {
      const uid = pod.metadata.uid ?? '';
      seen.add(uid);
      const worker = this.#workers.get(uid);
      if (pod.metadata.deletionTimestamp !== undefined) {
        if (worker === undefined) this.#finish(pod);
        else if (!worker.stopping) void this.#kill(pod, worker);
        continue;
      }
      const nodeName = getPath(pod, ['spec', 'nodeName']);
      // A pod bound to another node waits forever, as it would for a node that does not exist.
      if (nodeName !== undefined && nodeName !== NODE_NAME) continue;
      if (getPath(pod, ['status', 'podIP']) === undefined) {
        this.#trySchedule(pod);
        continue;
      }
      const phase = getPath(pod, ['status', 'phase']);
      if (
        worker === undefined &&
        phase !== 'Succeeded' &&
        phase !== 'Failed' &&
        !this.#dirs.has(uid)
      ) {
        this.#startWorker(pod);
      }
    }
    for (const [uid, w] of this.#workers) {
      if (!seen.has(uid) && !w.stopping) {
        void w.stop(0).then(() => this.#forget(uid));
      }
    }
  }

  #startWorker(pod: KObject): void {
    const uid = pod.metadata.uid ?? '';
    const dir = join(
      this.#o.dataDir,
      `${pod.metadata.namespace ?? ''}_${pod.metadata.name ?? ''}_${uid}`,
    );
    this.#dirs.set(uid, dir);
    const worker = new PodWorker({
      api: this.#o.api,
      podType: this.#podType,
      pod,
      dir,
      runtime: this.#o.runtime,
      backoff: this.#o.backoff,
      tokens: this.#o.tokens,
      log: this.#o.log,
    });
    this.#workers.set(uid, worker);
    recordEvent(this.#o.api, pod, {
      type: 'Normal',
      reason: 'Started',
      message: 'Started pod containers',
      component: 'kubelet',
    });
    void worker.run();
  }

  async #kill(pod: KObject, worker: PodWorker): Promise<void> {
    const grace = Number(pod.metadata.deletionGracePeriodSeconds ?? 0) * 1000;
    recordEvent(this.#o.api, pod, {
      type: 'Normal',
      reason: 'Killing',
      message: 'Stopping pod containers',
      component: 'kubelet',
    });
    await worker.stop(Math.min(grace, MAX_GRACE_MS));
    this.#finish(pod);
    this.#forget(pod.metadata.uid ?? '');
  }

  #forget(uid: string): void {
    this.#workers.delete(uid);
    const dir = this.#dirs.get(uid);
    this.#dirs.delete(uid);
    // Secret material written for volumes goes with the pod; logs are kept under data dir until stop.
    if (dir !== undefined) void rm(join(dir, 'volumes'), { recursive: true, force: true });
  }

  #finish(pod: KObject): void {
    this.#o.api.finishDeletion(
      this.#podType,
      pod.metadata.namespace ?? '',
      pod.metadata.name ?? '',
    );
  }

  /** Binds the pod to the node once its claims are bound, or says why it cannot. */
  #trySchedule(pod: KObject): void {
    const ns = pod.metadata.namespace ?? '';
    let problem: string | undefined;
    for (const claim of podClaims(pod)) {
      const pvc = this.#o.api.find(this.#pvcType, ns, claim);
      if (pvc === undefined) problem = `persistentvolumeclaim "${claim}" not found`;
      else if (pvc.metadata.deletionTimestamp !== undefined)
        problem = `persistentvolumeclaim "${claim}" is being deleted`;
      else if (getPath(pvc, ['status', 'phase']) !== 'Bound')
        problem ??= 'pod has unbound immediate PersistentVolumeClaims';
      if (problem !== undefined) break;
    }
    const status = isRecord(pod['status']) ? pod['status'] : {};
    if (problem !== undefined) {
      const conds: unknown[] = Array.isArray(status['conditions']) ? status['conditions'] : [];
      const current = conds.find((c) => isRecord(c) && c['type'] === 'PodScheduled');
      const message = `0/1 nodes are available: ${problem}.`;
      if (isRecord(current) && current['message'] === message) return;
      this.#o.api.update(
        this.#podType,
        ns,
        pod.metadata.name ?? '',
        {
          ...pod,
          status: {
            ...status,
            phase: 'Pending',
            conditions: [
              {
                type: 'PodScheduled',
                status: 'False',
                reason: 'Unschedulable',
                message,
                lastProbeTime: null,
                lastTransitionTime: now(),
              },
            ],
          },
        },
        { subresource: 'status' },
      );
      recordEvent(this.#o.api, pod, {
        type: 'Warning',
        reason: 'FailedScheduling',
        message,
        component: 'default-scheduler',
      });
      return;
    }
    const ip = this.#o.podPool.allocate();
    let updated = pod;
    if (getPath(pod, ['spec', 'nodeName']) === undefined) {
      const bound = clone(pod);
      (bound['spec'] as Record<string, unknown>)['nodeName'] = NODE_NAME;
      updated = this.#o.api.update(this.#podType, ns, pod.metadata.name ?? '', bound);
    }
    this.#o.api.update(
      this.#podType,
      ns,
      pod.metadata.name ?? '',
      {
        ...updated,
        status: {
          ...status,
          phase: 'Pending',
          hostIP: '127.0.0.1',
          hostIPs: [{ ip: '127.0.0.1' }],
          podIP: ip,
          podIPs: [{ ip }],
          startTime: now(),
          conditions: [
            {
              type: 'PodScheduled',
              status: 'True',
              lastProbeTime: null,
              lastTransitionTime: now(),
            },
          ],
        },
      },
      { subresource: 'status' },
    );
    recordEvent(this.#o.api, pod, {
      type: 'Normal',
      reason: 'Scheduled',
      message: `Successfully assigned ${ns}/${pod.metadata.name ?? ''} to ${NODE_NAME}`,
      component: 'default-scheduler',
    });
  }
}
