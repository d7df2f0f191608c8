// SPDX-License-Identifier: Apache-2.0
/**
 * Runs async jobs with at most `limit` in flight. The first failure stops new jobs; `drain`
 * waits for the running ones and rethrows that failure.
 */
export class WorkPool {
  readonly #limit: number;
  readonly #running = new Set<Promise<void>>();
  #failure: { error: unknown } | undefined;

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  /** Waits for a free slot, then starts `job`. Throws the first failure of an earlier job. */
  async run(job: () => Promise<void>): Promise<void> {
    while (this.#running.size >= this.#limit) await Promise.race(this.#running);
    if (this.#failure !== undefined) throw this.#failure.error;
    const p: Promise<void> = job().then(
      () => {
        this.#running.delete(p);
      },
      (error: unknown) => {
        this.#running.delete(p);
        this.#failure ??= { error };
      },
    );
    this.#running.add(p);
  }

  /** Waits for every running job; throws the first failure. */
  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.race(this.#running);
    if (this.#failure !== undefined) throw this.#failure.error;
  }
}
