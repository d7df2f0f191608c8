// SPDX-License-Identifier: Apache-2.0
/**
 * How long an HTTP transfer may go without progress. Two limits, so that a stalled server fails
 * the import in minutes instead of holding it for an hour:
 * - the idle timeout: one attempt (a HEAD, a ranged GET, a download connection) that receives no
 *   byte for this long is aborted and retried;
 * - the stall budget: the time the whole transfer spent without progress (silent attempts, failed
 *   attempts, back-off waits), summed over every retry and never given back by progress, so a
 *   server that sends a little and then stalls again cannot restart the count for ever.
 * When the budget is spent, the transfer fails with `CDI_SOURCE_STALLED`, naming the stall.
 */
import { CdiError, ErrorCodes, errorCode } from '../../common/errors.js';
import { formatDuration } from '../../common/duration.js';

/** An attempt without a byte for this long is aborted (CDI waits 10 minutes; too long to notice). */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/**
 * Time without progress a whole transfer may spend: 4 minutes, so a stalled source fails within
 * 5 minutes (the last attempt's watchdog is cut to what is left, and the first stall is noticed
 * after the idle timeout).
 */
export const DEFAULT_STALL_BUDGET_MS = 4 * 60_000;

/** The two limits, as configured by flag or pod environment. */
export interface TransferLimits {
  readonly idleTimeoutMs: number;
  readonly stallBudgetMs: number;
}

/** The defaults. */
export const DEFAULT_TRANSFER_LIMITS: TransferLimits = Object.freeze({
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  stallBudgetMs: DEFAULT_STALL_BUDGET_MS,
});

/** The error an attempt's watchdog raises: retryable, and recognised by {@link isStall}. */
export function idleError(what: string, idleMs: number): CdiError {
  return new CdiError(
    ErrorCodes.SourceStalled,
    `no data from ${what} for ${formatDuration(idleMs)}`,
    {
      retryable: true,
    },
  );
}

/** True for the error of a silent attempt. */
export function isStall(err: unknown): boolean {
  return errorCode(err) === ErrorCodes.SourceStalled;
}

/**
 * The stall budget of one transfer (shared by its HEAD, ranged reads and download). `progress()`
 * on every byte; `charge()` at every failure adds the time since the last progress or charge,
 * whichever is later; `remainingMs()` bounds the next attempt's watchdog.
 */
export class StallBudget {
  readonly #limits: TransferLimits;
  readonly #now: () => number;
  #spent = 0;
  #since: number;
  #stalls = 0;

  constructor(limits: TransferLimits = DEFAULT_TRANSFER_LIMITS, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
    this.#since = now();
  }

  get limits(): TransferLimits {
    return this.#limits;
  }

  /** Bytes arrived: the time from here on is not a stall until the next failure. */
  progress(): void {
    this.#since = this.#now();
  }

  /** Time spent without progress so far, including the current silence. */
  spentMs(): number {
    return this.#spent + (this.#now() - this.#since);
  }

  /** What the next attempt may still wait for a byte: the idle timeout, cut to the budget left. */
  watchdogMs(): number {
    const left = this.#limits.stallBudgetMs - this.spentMs();
    return Math.max(1, Math.min(this.#limits.idleTimeoutMs, left));
  }

  /**
   * Books a failed attempt. Returns the error to fail the transfer with when the budget is spent
   * (naming the stall and the last cause), else undefined (the caller may retry).
   */
  charge(cause: unknown, source: string): CdiError | undefined {
    const now = this.#now();
    this.#spent += now - this.#since;
    this.#since = now;
    if (isStall(cause)) this.#stalls += 1;
    if (this.#spent < this.#limits.stallBudgetMs) return undefined;
    return this.exhausted(cause, source);
  }

  /** The final error of a transfer that spent its budget (or its retries on a stall). */
  exhausted(cause: unknown, source: string): CdiError {
    const stalls = this.#stalls === 1 ? '1 stall' : `${this.#stalls} stalls`;
    return new CdiError(
      ErrorCodes.SourceStalled,
      `${source} stalled: ${formatDuration(this.#spent)} without progress (${stalls}; idle timeout ` +
        `${formatDuration(this.#limits.idleTimeoutMs)}, stall budget ${formatDuration(this.#limits.stallBudgetMs)}); ` +
        `last: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
        details: { spentMs: this.#spent, stalls: this.#stalls },
      },
    );
  }
}
