// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import {
  decideRelease,
  IdleMemoryRelease,
  lastResortCollector,
  type ReleaseState,
} from './memory-release.js';

const POLICY = { minWork: 100, minIntervalMs: 600_000 };

describe('decideRelease', () => {
  it.each<{ what: string; state: ReleaseState; want: boolean }>([
    {
      what: 'busy at the start',
      state: { busy: true, workSinceRelease: 0, lastReleaseMs: undefined, nowMs: 0 },
      want: false,
    },
    {
      what: 'first idle moment after the start',
      state: { busy: false, workSinceRelease: 3, lastReleaseMs: undefined, nowMs: 5 },
      want: true,
    },
    {
      what: 'idle again without a burst',
      state: { busy: false, workSinceRelease: 99, lastReleaseMs: 0, nowMs: 3_600_000 },
      want: false,
    },
    {
      what: 'a burst ended too soon after the last release',
      state: { busy: false, workSinceRelease: 500, lastReleaseMs: 0, nowMs: 599_999 },
      want: false,
    },
    {
      what: 'a burst ended, the interval passed',
      state: { busy: false, workSinceRelease: 100, lastReleaseMs: 0, nowMs: 600_000 },
      want: true,
    },
    {
      what: 'still busy after a burst',
      state: { busy: true, workSinceRelease: 500, lastReleaseMs: 0, nowMs: 3_600_000 },
      want: false,
    },
  ])('$what', ({ state, want }) => {
    expect(decideRelease(state, POLICY)).toBe(want);
  });
});

describe('IdleMemoryRelease', () => {
  it('collects when idle, then only after a burst and the interval', () => {
    let now = 0;
    let busy = true;
    let completed = 0;
    const collected: number[] = [];
    const release = new IdleMemoryRelease({
      busy: () => busy,
      completed: () => completed,
      collect: () => collected.push(now),
      policy: POLICY,
      now: () => now,
    });
    expect(release.check()).toBe(false);
    busy = false;
    completed = 1000;
    expect(release.check()).toBe(true);
    now = 700_000;
    completed = 1050;
    expect(release.check()).toBe(false);
    completed = 1100;
    expect(release.check()).toBe(true);
    expect(collected).toEqual([0, 700_000]);
  });

  it('does nothing without a collector', () => {
    const release = new IdleMemoryRelease({
      busy: () => false,
      completed: () => 0,
      collect: undefined,
    });
    release.start();
    expect(release.check()).toBe(false);
    release.stop();
  });

  it("uses V8's collector only when the process exposes it", () => {
    expect(lastResortCollector() !== undefined).toBe(globalThis.gc !== undefined);
  });
});
