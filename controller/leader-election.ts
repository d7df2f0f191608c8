// SPDX-License-Identifier: Apache-2.0
/**
 * Leader election with a coordination.k8s.io Lease (client-go `leaderelection`): two controller
 * replicas may run, only the holder of the Lease reconciles. The holder renews every
 * `retryPeriodMs`; a Lease not renewed within its `leaseDurationSeconds` may be taken over. The
 * decision is pure ({@link decideLease}); the loop around it is thin.
 */
import type { V1Lease } from '@kubernetes/client-node';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';

/** CDI's lock name. */
export const LEASE_NAME = 'cdi-controller-leader-election-helper';

/** What to do with the Lease. */
export type LeaseDecision =
  | { readonly kind: 'create'; readonly lease: V1Lease }
  | { readonly kind: 'update'; readonly lease: V1Lease }
  | { readonly kind: 'held-by-other'; readonly holder: string };

/** Inputs of {@link decideLease}. */
export interface LeaseInput {
  readonly current: V1Lease | undefined;
  readonly namespace: string;
  readonly identity: string;
  readonly now: Date;
  readonly leaseDurationSeconds: number;
}

function toMillis(t: Date | string | undefined): number | undefined {
  if (t === undefined) return undefined;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Decides whether to create, take over or renew the Lease, or to wait (pure). */
export function decideLease(input: LeaseInput): LeaseDecision {
  const { current, identity, now } = input;
  if (current === undefined) {
    return {
      kind: 'create',
      lease: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: LEASE_NAME, namespace: input.namespace },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: input.leaseDurationSeconds,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 0,
        },
      },
    };
  }
  const spec = current.spec ?? {};
  const holder = spec.holderIdentity ?? '';
  const renewed = toMillis(spec.renewTime) ?? 0;
  const durationMs = (spec.leaseDurationSeconds ?? input.leaseDurationSeconds) * 1000;
  const expired = now.getTime() > renewed + durationMs;
  if (holder !== '' && holder !== identity && !expired) return { kind: 'held-by-other', holder };
  const takingOver = holder !== identity;
  return {
    kind: 'update',
    lease: {
      ...current,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: input.leaseDurationSeconds,
        renewTime: now,
        ...(takingOver
          ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }
          : {}),
      },
    },
  };
}

/** The Lease calls the elector needs (a subset of {@link KubeClient}). */
export interface LeaseStore {
  getLease(namespace: string, name: string): Promise<V1Lease | undefined>;
  createLease(lease: V1Lease): Promise<boolean>;
  replaceLease(lease: V1Lease): Promise<boolean>;
}

/** Options of {@link LeaderElector}. */
export interface LeaderElectorOptions {
  readonly store: LeaseStore;
  readonly namespace: string;
  readonly identity: string;
  readonly log: Logger;
  /** Default 15 s (client-go). */
  readonly leaseDurationSeconds?: number;
  /** Default 2 s. */
  readonly retryPeriodMs?: number;
  /** Give up leadership when renewals failed for this long (default 10 s). */
  readonly renewDeadlineMs?: number;
}

/** Acquires and keeps a Lease. */
export class LeaderElector {
  private readonly duration: number;
  private readonly retryMs: number;
  private readonly deadlineMs: number;
  private stopped = false;
  private wakeUp: (() => void) | undefined;

  constructor(private readonly options: LeaderElectorOptions) {
    this.duration = options.leaseDurationSeconds ?? 15;
    this.retryMs = options.retryPeriodMs ?? 2000;
    this.deadlineMs = options.renewDeadlineMs ?? 10_000;
  }

  /** One attempt to acquire or renew; true when we hold the Lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { store, namespace, identity } = this.options;
    const current = await store.getLease(namespace, LEASE_NAME);
    const d = decideLease({
      current,
      namespace,
      identity,
      now: new Date(),
      leaseDurationSeconds: this.duration,
    });
    if (d.kind === 'held-by-other') return false;
    return d.kind === 'create' ? store.createLease(d.lease) : store.replaceLease(d.lease);
  }

  /** Resolves once this process leads; undefined if stopped before. */
  async acquire(): Promise<boolean> {
    let logged = false;
    while (!this.stopped) {
      try {
        if (await this.tryAcquireOrRenew()) {
          this.options.log.info('became leader', { identity: this.options.identity });
          return true;
        }
        if (!logged)
          this.options.log.info('waiting for leadership', {
            lease: `${this.options.namespace}/${LEASE_NAME}`,
          });
        logged = true;
      } catch (err) {
        this.options.log.warn('leader election attempt failed', { error: errorMessage(err) });
      }
      await this.sleep(this.retryMs);
    }
    return false;
  }

  /** Renews until stopped (resolves true) or leadership is lost (resolves false). */
  async hold(): Promise<boolean> {
    let lastRenew = Date.now();
    while (!this.stopped) {
      await this.sleep(this.retryMs);
      if (this.stopped) break;
      try {
        if (await this.tryAcquireOrRenew()) {
          lastRenew = Date.now();
          continue;
        }
        this.options.log.error('leadership lost to another holder');
        return false;
      } catch (err) {
        this.options.log.warn('renewing the lease failed', { error: errorMessage(err) });
      }
      if (Date.now() - lastRenew > this.deadlineMs) {
        this.options.log.error('leadership lost: renew deadline passed');
        return false;
      }
    }
    return true;
  }

  /** Stops the loops and, if we hold the Lease, releases it so a successor need not wait. */
  async release(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
    const { store, namespace, identity } = this.options;
    try {
      const current = await store.getLease(namespace, LEASE_NAME);
      if (current?.spec?.holderIdentity !== identity) return;
      await store.replaceLease({
        ...current,
        spec: {
          ...current.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: new Date(),
        },
      });
    } catch (err) {
      this.options.log.warn('releasing the lease failed', { error: errorMessage(err) });
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}
