// SPDX-License-Identifier: Apache-2.0
/** The kubelet's restart back-off as the sandbox computes it, and how it prints the delay. */
import { describe, expect, it } from 'vitest';
import { goDuration, KUBELET_RESTART_BACKOFF, nextBackoff } from '../sandbox/pod-worker.js';

describe('restart back-off', () => {
  it('goes 10s, 20s, 40s, ... and stays at 5 min', () => {
    const seen: string[] = [];
    let delay: number | undefined;
    for (let i = 0; i < 8; i++) {
      delay = nextBackoff(delay, 1_000, KUBELET_RESTART_BACKOFF);
      seen.push(goDuration(delay));
    }
    expect(seen).toEqual(['10s', '20s', '40s', '1m20s', '2m40s', '5m0s', '5m0s', '5m0s']);
  });

  it.each([
    { ranMs: 599_999, want: 300_000 },
    { ranMs: 600_000, want: 10_000 },
  ])('after a run of $ranMs ms at the cap, the next delay is $want ms', ({ ranMs, want }) => {
    expect(nextBackoff(300_000, ranMs, KUBELET_RESTART_BACKOFF)).toBe(want);
  });

  it.each([
    { ms: 250, text: '250ms' },
    { ms: 1_500, text: '1.5s' },
    { ms: 3_600_000, text: '1h0m0s' },
  ])('prints $ms ms as $text', ({ ms, text }) => {
    expect(goDuration(ms)).toBe(text);
  });
});
