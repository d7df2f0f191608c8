// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { errorCode } from '../../common/errors.js';
import {
  DEFAULT_TRANSFER_LIMITS,
  StallBudget,
  idleError,
  isStall,
  type TransferLimits,
} from './http-limits.js';

/** A clock the test moves by hand. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/**
 * Replays what the HTTP source does against a server that answers and then stalls on every
 * attempt, after sending `bytesPerAttempt` (0: headers only): the watchdog fires after
 * `watchdogMs()`, the failure is charged, then the capped exponential back-off (reset by
 * progress, as the download's failure count is). Returns the time until the transfer fails.
 */
function timeToFail(limits: TransferLimits, bytesPerAttempt: number, maxRetries: number): number {
  const c = clock();
  const start = c.now();
  const budget = new StallBudget(limits, c.now);
  let failures = 0;
  for (let attempt = 0; attempt < 10_000; attempt++) {
    c.advance(5); // connect and headers
    if (bytesPerAttempt > 0) {
      budget.progress();
      failures = 0;
    }
    const idle = budget.watchdogMs();
    c.advance(idle);
    const err = idleError('http://127.0.0.1/disk.img', idle);
    failures += 1;
    const spent = budget.charge(err, 'http://127.0.0.1/disk.img');
    if (spent !== undefined) {
      expect(errorCode(spent)).toBe('CDI_SOURCE_STALLED');
      expect(spent.message).toMatch(/stalled: .* without progress/);
      return c.now() - start;
    }
    if (failures > maxRetries) return c.now() - start;
    c.advance(Math.min(30_000, 1000 * 2 ** (failures - 1)));
  }
  throw new Error('never failed');
}

describe('StallBudget', () => {
  it.each([
    { what: 'headers, then nothing, every time', bytes: 0 },
    { what: 'a trickle, then a stall, every time (progress never gives the time back)', bytes: 1 },
  ])('with the defaults a stalled source fails within 5 minutes: $what', ({ bytes }) => {
    const took = timeToFail(DEFAULT_TRANSFER_LIMITS, bytes, 1_000);
    expect(took).toBeLessThanOrEqual(5 * 60_000);
    expect(took).toBeGreaterThanOrEqual(DEFAULT_TRANSFER_LIMITS.stallBudgetMs);
  });

  it('cuts the last watchdog to what is left of the budget', () => {
    const c = clock();
    const budget = new StallBudget({ idleTimeoutMs: 60_000, stallBudgetMs: 100_000 }, c.now);
    expect(budget.watchdogMs()).toBe(60_000);
    c.advance(60_000);
    expect(budget.charge(idleError('x', 60_000), 'x')).toBeUndefined();
    c.advance(10_000);
    expect(budget.watchdogMs()).toBe(30_000);
  });

  it('does not charge time after progress, and counts stalls in its message', () => {
    const c = clock();
    const budget = new StallBudget({ idleTimeoutMs: 10, stallBudgetMs: 25 }, c.now);
    c.advance(1_000);
    budget.progress();
    c.advance(10);
    expect(budget.charge(idleError('x', 10), 'x')).toBeUndefined();
    c.advance(10);
    expect(budget.charge(new Error('reset'), 'x')).toBeUndefined();
    c.advance(10);
    const spent = budget.charge(idleError('x', 10), 'http://h/disk');
    expect(spent?.message).toMatch(/^http:\/\/h\/disk stalled: 30 ms without progress \(2 stalls;/);
    expect(spent?.details).toEqual({ spentMs: 30, stalls: 2 });
  });

  it('recognises its own idle error only', () => {
    expect(isStall(idleError('x', 1000))).toBe(true);
    expect(isStall(new Error('no data'))).toBe(false);
  });
});
