// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { WorkQueue } from './queue.js';

/** A promise with its resolver, to hold a handler until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('WorkQueue', () => {
  it('de-duplicates keys that wait', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('is idle only when no key waits or runs, and counts finished runs', async () => {
    const q = new WorkQueue();
    expect(q.idle).toBe(true);
    q.add('a');
    expect(q.idle).toBe(false);
    expect(await q.get()).toBe('a');
    expect(q.idle).toBe(false);
    expect(q.completed).toBe(0);
    q.done('a');
    expect(q.idle).toBe(true);
    expect(q.completed).toBe(1);
  });

  it('never runs one key twice at once, and re-runs a key added while it ran', async () => {
    const q = new WorkQueue();
    const runs: string[] = [];
    let active = 0;
    let maxActive = 0;
    const first = gate();
    const secondDone = gate();
    const handler = async (key: string): Promise<void> => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs.push(key);
      if (runs.length === 1) await first.promise;
      active--;
      if (runs.length === 2) secondDone.open();
    };
    const running = q.run(handler, 3, () => undefined);
    q.add('k');
    await new Promise((r) => setImmediate(r));
    q.add('k'); // while the first run holds
    q.add('k');
    first.open();
    await secondDone.promise;
    q.shutDown();
    await running;
    expect(runs).toEqual(['k', 'k']);
    expect(maxActive).toBe(1);
  });

  it('retries a failing key with growing backoff and forgets it after success', async () => {
    const q = new WorkQueue({ baseDelayMs: 5, maxDelayMs: 20 });
    const times: number[] = [];
    const done = gate();
    let errors = 0;
    const running = q.run(
      async () => {
        times.push(Date.now());
        if (times.length < 4) throw new Error('boom');
        done.open();
        return Promise.resolve();
      },
      1,
      () => errors++,
    );
    q.add('x');
    await done.promise;
    q.shutDown();
    await running;
    expect(errors).toBe(3);
    expect(q.failureCount('x')).toBe(0);
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? t));
    expect(gaps[0]).toBeGreaterThanOrEqual(4);
    expect(gaps[2]).toBeGreaterThanOrEqual(15);
  });

  it.each([
    { what: 'first failure', failures: 0, want: 100 },
    { what: 'third failure doubles twice', failures: 2, want: 400 },
    { what: 'capped', failures: 10, want: 1000 },
  ])('backoff: $what', ({ failures, want }) => {
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000 });
    let delay = 0;
    for (let i = 0; i <= failures; i++) delay = q.addRateLimited('k');
    q.shutDown();
    expect(delay).toBe(want);
  });

  it('get() returns undefined after shut down', async () => {
    const q = new WorkQueue();
    const pending = q.get();
    q.shutDown();
    expect(await pending).toBeUndefined();
  });
});
