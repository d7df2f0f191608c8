// SPDX-License-Identifier: Apache-2.0
import { formatBytes } from '../../common/quantity.js';
import type { ProgressSnapshot } from './byte-counter.js';

const BAR_WIDTH = 30;

/** Renders one progress line: `[#####.....]  45.67%  1.2Gi/2.6Gi  118Mi/s`. */
export function renderProgressLine(progress: ProgressSnapshot, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? (progress.done / elapsedMs) * 1000 : 0;
  const amount =
    progress.total === undefined
      ? formatBytes(progress.done)
      : `${formatBytes(progress.done)}/${formatBytes(progress.total)}`;
  if (progress.percent === undefined) {
    return `${amount}  ${formatBytes(rate)}/s`;
  }
  const filled = Math.round((progress.percent / 100) * BAR_WIDTH);
  const bar = `${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}`;
  return `[${bar}] ${progress.percent.toFixed(2).padStart(6)}%  ${amount}  ${formatBytes(rate)}/s`;
}

/** A progress bar redrawn in place on a terminal (stderr), cleared when done. */
export class TerminalProgressBar {
  readonly #stream: NodeJS.WriteStream;
  readonly #start = Date.now();
  #drawn = false;

  constructor(stream: NodeJS.WriteStream) {
    this.#stream = stream;
  }

  /** Draws the current progress. */
  update(progress: ProgressSnapshot): void {
    this.#stream.write(`\r${renderProgressLine(progress, Date.now() - this.#start)}\x1b[K`);
    this.#drawn = true;
  }

  /** Ends the line so the next output starts clean. */
  finish(): void {
    if (this.#drawn) this.#stream.write('\n');
    this.#drawn = false;
  }
}
