// SPDX-License-Identifier: Apache-2.0
/**
 * Leader election with a coordination.k8s.io Lease (client-go `leaderelection`): two controller
 * replicas may run, only the holder of the Lease reconciles. The holder renews every
 * `retryPeriodMs`; a Lease whose record has not changed for its `leaseDurationSeconds` may be
 * taken over. As in client-go, that time is measured on this replica's own clock from when it
 * last saw the record change (its "observed time"), never by comparing the holder's `renewTime`
 * with the local clock: the nodes' clocks may disagree by more than a lease duration. The
 * decision is pure ({@link decideLease}); the loop around it is thin.
 */
import type { V1Lease } from '@kubernetes/client-node';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';

/** CDI's lock name. */
export const LEASE_NAME = 'cdi-controller-leader-election-helper';

/** The Lease record as last seen, and when, on this replica's clock (client-go's observedTime). */
export interface LeaseObservation {
  /** The record's identity: holder, renew and acquire times, transitions, duration. */
  readonly record: string;
  /** Local time (ms) at which this record was first seen. */
  readonly seenAt: number;
}

/** What to do with the Lease. */
export type LeaseDecision =
  | { readonly kind: 'create'; readonly lease: V1Lease }
  | { readonly kind: 'update'; readonly lease: V1Lease }
  | {
      readonly kind: 'held-by-other';
      readonly holder: string;
      /** Keep it for the next decision. */
      readonly observed: LeaseObservation;
    };

/** Inputs of {@link decideLease}. */
export interface LeaseInput {
  readonly current: V1Lease | undefined;
  readonly namespace: string;
  readonly identity: string;
  /** This replica's clock. */
  readonly now: Date;
  readonly leaseDurationSeconds: number;
  /** What this replica saw before (undefined on its first look). */
  readonly observed: LeaseObservation | undefined;
}

function timeText(t: Date | string | undefined): string {
  if (t === undefined) return '';
  return t instanceof Date ? t.toISOString() : t;
}

/** The observation of `lease` at local time `now`: a new record restarts the clock. */
export function observeLease(
  lease: V1Lease,
  now: number,
  previous: LeaseObservation | undefined,
): LeaseObservation {
  const spec = lease.spec ?? {};
  const record = JSON.stringify([
    spec.holderIdentity ?? '',
    timeText(spec.renewTime),
    timeText(spec.acquireTime),
    spec.leaseTransitions ?? 0,
    spec.leaseDurationSeconds ?? 0,
  ]);
  return previous?.record === record ? previous : { record, seenAt: now };
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
  const observed = observeLease(current, now.getTime(), input.observed);
  const durationMs = (spec.leaseDurationSeconds ?? input.leaseDurationSeconds) * 1000;
  const expired = now.getTime() > observed.seenAt + durationMs;
  if (holder !== '' && holder !== identity && !expired)
    return { kind: 'held-by-other', holder, observed };
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
  /** This replica's clock (tests skew it); `Date.now` by default. */
  readonly clock?: () => number;
}

/** Acquires and keeps a Lease. */
export class LeaderElector {
  private readonly duration: number;
  private readonly retryMs: number;
  private readonly deadlineMs: number;
  private readonly clock: () => number;
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  private observed: LeaseObservation | undefined;

  constructor(private readonly options: LeaderElectorOptions) {
    this.duration = options.leaseDurationSeconds ?? 15;
    this.retryMs = options.retryPeriodMs ?? 2000;
    this.deadlineMs = options.renewDeadlineMs ?? 10_000;
    this.clock = options.clock ?? Date.now;
  }

  /** One attempt to acquire or renew; true when we hold the Lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { store, namespace, identity } = this.options;
    const current = await store.getLease(namespace, LEASE_NAME);
    const now = this.clock();
    const d = decideLease({
      current,
      namespace,
      identity,
      now: new Date(now),
      leaseDurationSeconds: this.duration,
      observed: this.observed,
    });
    if (d.kind === 'held-by-other') {
      this.observed = d.observed;
      return false;
    }
    const written = await (d.kind === 'create'
      ? store.createLease(d.lease)
      : store.replaceLease(d.lease));
    if (written) this.observed = observeLease(d.lease, now, undefined);
    return written;
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
    let lastRenew = this.clock();
    while (!this.stopped) {
      await this.sleep(this.retryMs);
      if (this.stopped) break;
      try {
        if (await this.tryAcquireOrRenew()) {
          lastRenew = this.clock();
          continue;
        }
        this.options.log.error('leadership lost to another holder');
        return false;
      } catch (err) {
        this.options.log.warn('renewing the lease failed', { error: errorMessage(err) });
      }
      if (this.clock() - lastRenew > this.deadlineMs) {
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
          renewTime: new Date(this.clock()),
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
