// SPDX-License-Identifier: Apache-2.0
/**
 * A work queue keyed by `namespace/name` (client-go's workqueue, pepr's `queueKey`): a key waits
 * at most once however often it is added, never runs in two workers at once (a key added while it
 * runs runs again afterwards), and failed keys come back with per-key exponential backoff until a
 * run succeeds.
 */

/** Options of {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** First retry delay of a failing key (default 500 ms). */
  readonly baseDelayMs?: number;
  /** Longest retry delay (default 60 s). */
  readonly maxDelayMs?: number;
}

/** Handles one key; a rejection means "retry with backoff". */
export type KeyHandler = (key: string) => Promise<void>;

/** A de-duplicating, rate-limited work queue. */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private waiters: (() => void)[] = [];
  private shuttingDown = false;
  private finished = 0;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(options: WorkQueueOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
  }

  /** Queues a key now (no-op when it is already waiting). */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // re-queued by done()
    this.queue.push(key);
    this.wake();
  }

  /** Queues a key after a delay; an earlier pending delay for the key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    if (this.timers.has(key)) return;
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, timer);
  }

  /** Queues a key after its backoff delay, which doubles with each consecutive failure. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.baseDelayMs * 2 ** n, this.maxDelayMs);
    this.addAfter(key, delay);
    return delay;
  }

  /** Forgets a key's failures (after a successful run). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Number of consecutive failures of a key. */
  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Keys whose runs finished, since the queue was made (a running count). */
  get completed(): number {
    return this.finished;
  }

  /** True when no key waits or runs (keys added after a delay do not count until due). */
  get idle(): boolean {
    return this.queue.length === 0 && this.processing.size === 0;
  }

  /** Keys waiting to run. */
  get length(): number {
    return this.queue.length;
  }

  /** Takes the next key, waiting for one; undefined once shut down. */
  async get(): Promise<string | undefined> {
    while (this.queue.length === 0) {
      if (this.shuttingDown) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  /** Marks a key's run finished; re-queues it if it was added meanwhile. */
  done(key: string): void {
    this.processing.delete(key);
    this.finished++;
    if (this.dirty.has(key)) {
      this.queue.push(key);
      this.wake();
    }
  }

  /** Stops handing out keys and cancels delayed adds. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.wake(true);
  }

  /**
   * Runs `workers` loops that take keys and call `handler`, until shut down. A failing key is
   * retried with backoff; `onError` sees each failure.
   */
  async run(
    handler: KeyHandler,
    workers: number,
    onError: (key: string, err: unknown) => void,
  ): Promise<void> {
    const loop = async (): Promise<void> => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        try {
          await handler(key);
          this.forget(key);
        } catch (err) {
          onError(key, err);
          this.addRateLimited(key);
        } finally {
          this.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, loop));
  }

  private wake(all = false): void {
    const list = all ? this.waiters : this.waiters.splice(0, 1);
    if (all) this.waiters = [];
    for (const w of list) w();
  }
}
