// SPDX-License-Identifier: Apache-2.0
/**
 * Gives the memory of a burst of work back once the controller is idle. The start (the first
 * lists of every informer, one reconcile per cached object) and every large batch of
 * DataVolumes leave garbage behind (dead list responses and their buffers), and V8 sizes the
 * heap for the next burst. One memory-reducing full collection (V8's "last resort" flavour)
 * once the queues are empty returned 15-20 MiB of RSS with 1,000 DataVolumes cached. It costs
 * a few hundred milliseconds of CPU, so it runs after the start and then at most once per
 * interval, and only after enough work to have left garbage.
 */

/** What {@link decideRelease} looks at. */
export interface ReleaseState {
  /** True while a work queue holds or runs a key. */
  readonly busy: boolean;
  /** Reconciles finished since the last release (or since the start). */
  readonly workSinceRelease: number;
  /** When the last release ran (ms, monotonic); undefined before the first. */
  readonly lastReleaseMs: number | undefined;
  readonly nowMs: number;
}

/** When a release runs. */
export interface ReleasePolicy {
  /** Reconciles that make a burst worth a release after the first (default 100). */
  readonly minWork: number;
  /** Least time between two releases (default 10 min). */
  readonly minIntervalMs: number;
}

export const DEFAULT_RELEASE_POLICY: ReleasePolicy = { minWork: 100, minIntervalMs: 10 * 60_000 };

/**
 * Whether to release now (pure): the queues are idle, and this is the first idle moment after
 * the start, or a burst of at least `minWork` reconciles ended at least `minIntervalMs` after
 * the last release.
 */
export function decideRelease(state: ReleaseState, policy: ReleasePolicy): boolean {
  if (state.busy) return false;
  if (state.lastReleaseMs === undefined) return true;
  return (
    state.workSinceRelease >= policy.minWork &&
    state.nowMs - state.lastReleaseMs >= policy.minIntervalMs
  );
}

/** Options of {@link IdleMemoryRelease}. */
export interface IdleMemoryReleaseOptions {
  /** True while any work queue holds or runs a key. */
  readonly busy: () => boolean;
  /** Reconciles finished so far (a running count). */
  readonly completed: () => number;
  /** Runs the collection; undefined when the process cannot (started without `--expose-gc`). */
  readonly collect: (() => void) | undefined;
  /** How often idleness is checked (default 2 s). */
  readonly checkMs?: number;
  readonly policy?: ReleasePolicy;
  readonly now?: () => number;
  /** Told the duration of each release. */
  readonly onRelease?: (ms: number) => void;
}

/** The collector V8 exposes with `--expose-gc`, as a memory-reducing full collection. */
export function lastResortCollector(): (() => void) | undefined {
  const gc = globalThis.gc;
  if (gc === undefined) return undefined;
  return () => gc({ type: 'major', flavor: 'last-resort' });
}

/** Checks for idleness on a timer and releases memory as {@link decideRelease} says. */
export class IdleMemoryRelease {
  private timer: NodeJS.Timeout | undefined;
  /** The running count of reconciles at the last release. */
  private completedAtRelease = 0;
  private lastReleaseMs: number | undefined;
  private readonly now: () => number;

  constructor(private readonly options: IdleMemoryReleaseOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** Starts checking; nothing happens when the process has no collector. */
  start(): void {
    if (this.options.collect === undefined || this.timer !== undefined) return;
    this.timer = setInterval(() => this.check(), this.options.checkMs ?? 2000);
    // Never keeps a stopping process alive.
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check: releases when the policy says so; returns whether it did. */
  check(): boolean {
    const collect = this.options.collect;
    if (collect === undefined) return false;
    const nowMs = this.now();
    const release = decideRelease(
      {
        busy: this.options.busy(),
        workSinceRelease: this.options.completed() - this.completedAtRelease,
        lastReleaseMs: this.lastReleaseMs,
        nowMs,
      },
      this.options.policy ?? DEFAULT_RELEASE_POLICY,
    );
    if (!release) return false;
    collect();
    const end = this.now();
    this.lastReleaseMs = end;
    this.completedAtRelease = this.options.completed();
    this.options.onRelease?.(end - nowMs);
    return true;
  }
}
