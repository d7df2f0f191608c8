// SPDX-License-Identifier: Apache-2.0
import type { V1Lease } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../common/logger.js';
import { decideLease, LeaderElector, LEASE_NAME, type LeaseStore } from './leader-election.js';

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

describe('decideLease', () => {
  it.each<{ what: string; current: V1Lease | undefined; want: string; transitions?: number }>([
    { what: 'no lease: create', current: undefined, want: 'create' },
    { what: 'ours: renew', current: lease('me', 5, 2), want: 'update', transitions: 2 },
    { what: 'other, fresh: wait', current: lease('other', 5), want: 'held-by-other' },
    {
      what: 'other, expired: take over',
      current: lease('other', 20, 1),
      want: 'update',
      transitions: 2,
    },
    {
      what: 'released (no holder): take',
      current: lease('', 1, 3),
      want: 'update',
      transitions: 4,
    },
  ])('$what', ({ current, want, transitions }) => {
    const d = decideLease({
      current,
      namespace: 'cdi',
      identity: 'me',
      now: NOW,
      leaseDurationSeconds: 15,
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
});
