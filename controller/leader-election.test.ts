// SPDX-License-Identifier: Apache-2.0
import type { V1Lease } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../common/logger.js';
import {
  decideLease,
  LeaderElector,
  LEASE_NAME,
  observeLease,
  type LeaseObservation,
  type LeaseStore,
} from './leader-election.js';

const NOW = new Date('2026-11-22T00:00:30Z');

function lease(holder: string, renewedSecondsAgo: number, transitions = 0): V1Lease {
  return {
    metadata: { name: LEASE_NAME, namespace: 'cdi', resourceVersion: '7' },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: 15,
      renewTime: new Date(NOW.getTime() - renewedSecondsAgo * 1000),
      leaseTransitions: transitions,
    },
  };
}

/** This replica saw `l` first `secondsAgo` seconds ago on its own clock. */
function seen(l: V1Lease, secondsAgo: number): LeaseObservation {
  return observeLease(l, NOW.getTime() - secondsAgo * 1000, undefined);
}

const HOUR = 3600;

describe('decideLease', () => {
  it.each<{
    what: string;
    current: V1Lease | undefined;
    observed?: (current: V1Lease) => LeaseObservation;
    want: string;
    transitions?: number;
  }>([
    { what: 'no lease: create', current: undefined, want: 'create' },
    { what: 'ours: renew', current: lease('me', 5, 2), want: 'update', transitions: 2 },
    {
      what: 'other, first look: wait a lease duration',
      current: lease('other', 5),
      want: 'held-by-other',
    },
    {
      what: 'other, unchanged for 20 s here: take over',
      current: lease('other', 20, 1),
      observed: (c) => seen(c, 20),
      want: 'update',
      transitions: 2,
    },
    {
      what: 'other, unchanged for 10 s here: wait',
      current: lease('other', 20, 1),
      observed: (c) => seen(c, 10),
      want: 'held-by-other',
    },
    {
      what: "other, renewed since the last look: wait (the holder's record changed)",
      current: lease('other', 0, 1),
      observed: () => seen(lease('other', 30, 1), 30),
      want: 'held-by-other',
    },
    {
      // The holder's clock runs an hour behind ours: its fresh renewTime looks an hour old.
      what: 'skew: holder an hour behind, record fresh here: wait',
      current: lease('other', HOUR, 1),
      observed: (c) => seen(c, 1),
      want: 'held-by-other',
    },
    {
      // The holder's clock runs an hour ahead: its renewTime is in our future, yet it stopped.
      what: 'skew: holder an hour ahead, record unchanged for 20 s here: take over',
      current: lease('other', -HOUR, 1),
      observed: (c) => seen(c, 20),
      want: 'update',
      transitions: 2,
    },
    {
      what: 'released (no holder): take',
      current: lease('', 1, 3),
      want: 'update',
      transitions: 4,
    },
  ])('$what', ({ current, observed, want, transitions }) => {
    const d = decideLease({
      current,
      namespace: 'cdi',
      identity: 'me',
      now: NOW,
      leaseDurationSeconds: 15,
      observed: current === undefined ? undefined : observed?.(current),
    });
    expect(d.kind).toBe(want);
    if (d.kind !== 'held-by-other') {
      expect(d.lease.spec?.holderIdentity).toBe('me');
      expect(d.lease.spec?.renewTime).toEqual(NOW);
      if (transitions !== undefined) expect(d.lease.spec?.leaseTransitions).toBe(transitions);
      if (d.kind === 'update') expect(d.lease.metadata?.resourceVersion).toBe('7');
    }
  });
});

/** An in-memory Lease store with optimistic concurrency, standing in for the API server. */
class MemoryLeases implements LeaseStore {
  lease: V1Lease | undefined;
  private version = 0;
  getLease(): Promise<V1Lease | undefined> {
    return Promise.resolve(this.lease === undefined ? undefined : structuredClone(this.lease));
  }
  createLease(l: V1Lease): Promise<boolean> {
    if (this.lease !== undefined) return Promise.resolve(false);
    this.lease = { ...l, metadata: { ...l.metadata, resourceVersion: String(++this.version) } };
    return Promise.resolve(true);
  }
  replaceLease(l: V1Lease): Promise<boolean> {
    if (l.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion)
      return Promise.resolve(false);
    this.lease = { ...l, metadata: { ...l.metadata, resourceVersion: String(++this.version) } };
    return Promise.resolve(true);
  }
}

describe('LeaderElector', () => {
  it('one of two replicas leads; the other takes over after release', async () => {
    const store = new MemoryLeases();
    const opts = { store, namespace: 'cdi', log: silentLogger, retryPeriodMs: 10 };
    const a = new LeaderElector({ ...opts, identity: 'a' });
    const b = new LeaderElector({ ...opts, identity: 'b' });
    expect(await a.acquire()).toBe(true);
    expect(await b.tryAcquireOrRenew()).toBe(false);
    const bLeads = b.acquire();
    await a.release();
    expect(await bLeads).toBe(true);
    expect(store.lease?.spec?.holderIdentity).toBe('b');
    await b.release();
    expect(store.lease?.spec?.holderIdentity).toBe('');
  });

  it.each([
    { what: 'an hour behind', skewMs: -3600_000 },
    { what: 'an hour ahead', skewMs: 3600_000 },
  ])(
    'a holder whose clock is $what keeps the lease while it renews and loses it only after a lease duration of silence',
    async ({ skewMs }) => {
      const store = new MemoryLeases();
      let t = Date.parse('2026-12-07T12:00:00Z');
      const opts = { store, namespace: 'cdi', log: silentLogger, leaseDurationSeconds: 15 };
      const a = new LeaderElector({ ...opts, identity: 'a', clock: () => t + skewMs });
      const b = new LeaderElector({ ...opts, identity: 'b', clock: () => t });
      expect(await a.tryAcquireOrRenew()).toBe(true);
      // a renews every 2 s of b's time: b never takes over, whatever the clocks say.
      for (let i = 0; i < 20; i++) {
        expect(await b.tryAcquireOrRenew()).toBe(false);
        t += 2000;
        expect(await a.tryAcquireOrRenew()).toBe(true);
      }
      // a stops (a crash: no release). b waits one lease duration from when it saw the last change.
      expect(await b.tryAcquireOrRenew()).toBe(false);
      t += 14_000;
      expect(await b.tryAcquireOrRenew()).toBe(false);
      t += 2000;
      expect(await b.tryAcquireOrRenew()).toBe(true);
      expect(store.lease?.spec?.holderIdentity).toBe('b');
      expect(store.lease?.spec?.leaseTransitions).toBe(1);
    },
  );
});
