// SPDX-License-Identifier: Apache-2.0
/**
 * How much of an import has reached its target file, for the CLI's progress line: the
 * allocated size of the file being written (`NAME.part`, see sink/raw-target.ts), sampled on a
 * timer. Sparse writes allocate only the data, so this is the data written, not the virtual size.
 * Only the terminal line reads it; nothing is decided on it.
 */
import { stat } from 'node:fs/promises';

/** Samples a file's allocated bytes every `intervalMs` until stopped; `onSample` after each. */
export class WrittenProbe {
  #bytes: number | undefined;
  readonly #timer: NodeJS.Timeout;

  constructor(path: string, onSample: () => void, intervalMs = 500) {
    this.#timer = setInterval(() => {
      stat(path).then(
        (st) => {
          this.#bytes = st.blocks * 512;
          onSample();
        },
        () => undefined,
      );
    }, intervalMs);
    this.#timer.unref();
  }

  /** The last sample; undefined before the file exists. */
  get bytes(): number | undefined {
    return this.#bytes;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
