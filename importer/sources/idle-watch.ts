// SPDX-License-Identifier: Apache-2.0
/**
 * Watchdogs for sources whose client library has no idle timeout of its own (the registry's
 * requests and blobs, @aws-sdk/client-s3's requests and object bodies): a request or a body
 * that goes silent for the attempt's watchdog time is cut with the retryable
 * `CDI_SOURCE_STALLED` of http-limits.ts, and stalls are charged to the transfer's
 * {@link StallBudget}, so these sources fail a stalled transfer within the same budget as HTTP.
 */
import { idleError, isStall, type StallBudget } from './http-limits.js';

/**
 * Runs one request with a signal that aborts it when `alive()` was not called for `ms` (the
 * call itself starts the clock). A request cut that way rejects with the idle error; one cut by
 * `signal` rejects as the library rejects it.
 */
export async function withIdleTimeout<T>(
  what: string,
  ms: number,
  signal: AbortSignal,
  run: (signal: AbortSignal, alive: () => void) => Promise<T>,
): Promise<T> {
  const idle = new AbortController();
  const timer = setTimeout(() => idle.abort(idleError(what, ms)), ms);
  try {
    return await run(AbortSignal.any([signal, idle.signal]), () => timer.refresh());
  } catch (err) {
    if (!signal.aborted && idle.signal.aborted) throw idle.signal.reason;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
/** What a stall names: the request that stalled and the transfer it belongs to (or one name). */
export type StallNames = string | { readonly request: string; readonly transfer: string };

/**
 * Runs `attempt` under the budget's watchdog until it succeeds or fails otherwise than by a
 * stall; each stall is charged, and once the budget is spent the transfer fails with the
 * budget's `CDI_SOURCE_STALLED` naming the stall. Success counts as progress.
 */
export async function retryStalls<T>(
  budget: StallBudget,
  names: StallNames,
  signal: AbortSignal,
  attempt: (signal: AbortSignal, alive: () => void) => Promise<T>,
): Promise<T> {
  const what = typeof names === 'string' ? names : names.request;
  const transfer = typeof names === 'string' ? names : names.transfer;
  for (;;) {
    try {
      const result = await withIdleTimeout(what, budget.watchdogMs(), signal, (s, alive) =>
        attempt(s, () => {
          budget.progress();
          alive();
        }),
      );
      budget.progress();
      return result;
    } catch (err) {
      if (signal.aborted || !isStall(err)) throw err;
      const spent = budget.charge(err, transfer);
      if (spent !== undefined) throw spent;
    }
  }
}

/**
 * Awaits the next chunk of a body with a watchdog of `ms`; `onIdle` must make the pending
 * `next()` reject (destroy the body with the idle error). The timer runs only while we wait for
 * the network, not while a consumer holds the generator at `yield` (a slow converter is not an
 * idle connection).
 */
export async function nextWithin<T>(
  it: AsyncIterator<T>,
  ms: number,
  onIdle: () => void,
): Promise<IteratorResult<T>> {
  const timer = setTimeout(onIdle, ms);
  try {
    return await it.next();
  } finally {
    clearTimeout(timer);
  }
}

/** A body that can be destroyed with an error (Node streams, undici bodies). */
export interface DestroyableBody extends AsyncIterable<unknown> {
  destroy(err?: Error): unknown;
}

/**
 * The chunks of `body`, each awaited under the budget's watchdog; every chunk is progress, and
 * so is the consumer asking for the next one. A silent body is destroyed with the idle error
 * naming `what`, which the caller charges and resumes from.
 */
export async function* watchedChunks(
  body: DestroyableBody,
  budget: StallBudget,
  what: string,
): AsyncGenerator<Buffer> {
  const it = body[Symbol.asyncIterator]();
  for (;;) {
    const ms = budget.watchdogMs();
    const r = await nextWithin(it, ms, () => body.destroy(idleError(what, ms)));
    if (r.done === true) return;
    budget.progress();
    yield r.value as Buffer;
    budget.progress();
  }
}
