// SPDX-License-Identifier: Apache-2.0
/**
 * The level-triggered loop the sandbox's controllers share: store changes of the types a
 * controller follows wake one pass over everything, at most once per delay, however many
 * changes came in between (a burst of writes costs one pass, not one per write).
 */
import type { Logger } from '../../common/logger.js';
import type { ObjectStore, StoreEvent } from './store.js';

/** How one controller's passes run. */
export interface SweepLoopOptions {
  /** The pass over everything the controller keeps in step. */
  readonly sweep: () => void;
  /** Pause between a wake-up and its pass, in milliseconds. */
  readonly delayMs: number;
  readonly log: Logger;
  /** What a failed pass is logged as, e.g. `gc sweep failed`. */
  readonly failure: string;
  /** `debug` where a failure is an expected race with another writer. */
  readonly level: 'warn' | 'debug';
  /** Runs another pass after a failed one (else the next change wakes it). */
  readonly retry: boolean;
}

/** One controller's debounced pass. */
export class SweepLoop {
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(private readonly opts: SweepLoopOptions) {}

  /** Follows `store`: each change that `wakes` accepts schedules a pass. */
  follow(store: ObjectStore, wakes: (e: StoreEvent) => boolean): void {
    this.#stopped = false;
    this.#unsubscribe = store.subscribe((e) => {
      if (wakes(e)) this.schedule();
    });
  }

  /** Schedules a pass unless one is already due or the loop has stopped. */
  schedule(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.opts.sweep();
      } catch (err) {
        this.opts.log[this.opts.level](this.opts.failure, {
          error: err instanceof Error ? err.message : String(err),
        });
        if (this.opts.retry) this.schedule();
      }
    }, this.opts.delayMs);
  }

  /** Stops following and drops the pending pass. */
  stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
