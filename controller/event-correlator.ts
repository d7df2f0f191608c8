// SPDX-License-Identifier: Apache-2.0
/**
 * Which events are written, as client-go's `EventCorrelator` decides (`events_cache.go`), with
 * one difference chosen for write volume: client-go turns a repeated event into a PATCH of its
 * `count`; here a repeat within the window is not written at all, since a count bump is an API
 * write too and tells a reader nothing the first event did not. Pure: the state is passed in.
 *
 * - The same event (object, type, reason, message) within {@link DUPLICATE_WINDOW_MS} of its
 *   last write: dropped.
 * - Similar events (object, type, reason; the message differs, as a retrying import's errors
 *   do): the first {@link MAX_SIMILAR} within {@link SIMILAR_WINDOW_MS} are written as they are,
 *   the next once with client-go's "(combined from similar events): " prefix, the rest dropped
 *   until the window ends.
 */
import type { EventAction } from './actions.js';

/** Window in which the same event is not written again. */
export const DUPLICATE_WINDOW_MS = 60_000;
/** client-go's `defaultAggregateIntervalInSeconds`. */
export const SIMILAR_WINDOW_MS = 600_000;
/** client-go's `defaultAggregateMaxEvents`. */
export const MAX_SIMILAR = 10;
/** client-go's prefix of an aggregated event's message. */
export const COMBINED_PREFIX = '(combined from similar events): ';
/** Entries kept before old ones are pruned. */
const MAX_ENTRIES = 10_000;

/** What the correlator remembers. */
export interface CorrelatorState {
  /** Last write of each exact event. */
  readonly written: Map<string, number>;
  /** Similar events of an object: when the window started and how many were written in it. */
  readonly similar: Map<string, { readonly since: number; readonly count: number }>;
}

/** An empty state. */
export function newCorrelatorState(): CorrelatorState {
  return { written: new Map(), similar: new Map() };
}

/** The event to write (its message may be the combined one), or undefined to write nothing. */
export function correlate(
  state: CorrelatorState,
  action: EventAction,
  now: number,
): EventAction | undefined {
  const similarKey = `${action.target.uid}|${action.type}|${action.reason}`;
  const exactKey = `${similarKey}|${action.message}`;
  const last = state.written.get(exactKey);
  if (last !== undefined && now - last < DUPLICATE_WINDOW_MS) return undefined;
  const seen = state.similar.get(similarKey);
  const window =
    seen === undefined || now - seen.since >= SIMILAR_WINDOW_MS ? { since: now, count: 0 } : seen;
  if (window.count > MAX_SIMILAR) return undefined;
  state.similar.set(similarKey, { since: window.since, count: window.count + 1 });
  state.written.set(exactKey, now);
  prune(state, now);
  return window.count === MAX_SIMILAR
    ? { ...action, message: `${COMBINED_PREFIX}${action.message}` }
    : action;
}

function prune(state: CorrelatorState, now: number): void {
  if (state.written.size > MAX_ENTRIES) {
    for (const [k, t] of state.written) if (now - t >= DUPLICATE_WINDOW_MS) state.written.delete(k);
  }
  if (state.similar.size > MAX_ENTRIES) {
    for (const [k, w] of state.similar)
      if (now - w.since >= SIMILAR_WINDOW_MS) state.similar.delete(k);
  }
}
