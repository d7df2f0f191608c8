// SPDX-License-Identifier: Apache-2.0
/**
 * The CLI's progress line, redrawn in place on a terminal and fitted to its width:
 * `[#####.....]  45.67%  1.2Gi/2.6Gi received  118Mi/s  ETA 12s  880Mi written`. "Received"
 * counts the source's bytes (what the percentage measures); "written" counts what reached the
 * target, which for a compressed source can trail far behind the last byte received.
 */
import { formatBytes } from '../../common/quantity.js';
import type { ProgressSnapshot } from './byte-counter.js';

/** Widest bar drawn; narrower terminals get a narrower bar, the narrowest none. */
const MAX_BAR_WIDTH = 30;
const MIN_BAR_WIDTH = 10;

/** `1h02m03s` / `4m05s` / `6s`; `--` when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m${String(rest).padStart(2, '0')}s`;
  if (m > 0) return `${m}m${String(rest).padStart(2, '0')}s`;
  return `${rest}s`;
}

/**
 * `[####....] 45.67%  TEXT` fitted to `columns` (one column is left free so the cursor never
 * wraps): the bar shrinks first, then goes, then the text is cut.
 */
export function fitBarLine(fraction: number | undefined, text: string, columns: number): string {
  const room = Math.max(1, columns - 1);
  if (fraction === undefined) return text.slice(0, room);
  const f = Math.min(1, Math.max(0, fraction));
  const percent = `${(f * 100).toFixed(2).padStart(6)}%`;
  const width = Math.min(MAX_BAR_WIDTH, room - percent.length - text.length - 5);
  if (width >= MIN_BAR_WIDTH) {
    const filled = Math.round(f * width);
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${percent}  ${text}`;
  }
  return `${percent}  ${text}`.slice(0, room);
}

/** What one redraw of an import shows. */
export interface ImportProgressView {
  readonly progress: ProgressSnapshot;
  readonly elapsedMs: number;
  /** Bytes that reached the target so far, when known. */
  readonly written?: number;
}

/** Renders an import's progress line for a terminal `columns` wide. */
export function renderProgressLine(view: ImportProgressView, columns = 80): string {
  const { progress, elapsedMs } = view;
  const rate = elapsedMs > 0 ? (progress.done / elapsedMs) * 1000 : 0;
  const amount =
    progress.total === undefined
      ? `${formatBytes(progress.done)} received`
      : `${formatBytes(progress.done)}/${formatBytes(progress.total)} received`;
  const parts = [amount, `${formatBytes(rate)}/s`];
  if (progress.total !== undefined) {
    const eta = rate > 0 ? (progress.total - progress.done) / rate : Number.NaN;
    // Everything received but not yet complete: the rest is being decoded and written.
    if (progress.percent === 100) parts.push('done');
    else if (progress.done >= progress.total) parts.push('writing');
    else parts.push(`ETA ${formatDuration(eta)}`);
  }
  if (view.written !== undefined) parts.push(`${formatBytes(view.written)} written`);
  const fraction = progress.percent === undefined ? undefined : progress.percent / 100;
  return fitBarLine(fraction, parts.join('  '), columns);
}

/** A progress bar redrawn in place on a terminal (stderr), ended with a newline when done. */
export class TerminalProgressBar {
  readonly #stream: NodeJS.WriteStream;
  readonly #start = Date.now();
  readonly #written: (() => number | undefined) | undefined;
  #last: ProgressSnapshot | undefined;
  #drawn = false;

  /** `written` tells how many bytes reached the target (polled on each redraw). */
  constructor(stream: NodeJS.WriteStream, written?: () => number | undefined) {
    this.#stream = stream;
    this.#written = written;
  }

  /** Draws the current progress. */
  update(progress: ProgressSnapshot): void {
    this.#last = progress;
    this.#draw();
  }

  /** Redraws the last progress (e.g. once more bytes were written). */
  redraw(): void {
    if (this.#last !== undefined) this.#draw();
  }

  #draw(): void {
    if (this.#last === undefined) return;
    const written = this.#written?.();
    const line = renderProgressLine(
      {
        progress: this.#last,
        elapsedMs: Date.now() - this.#start,
        ...(written === undefined ? {} : { written }),
      },
      this.#stream.columns || 80,
    );
    this.#stream.write(`\r${line}\x1b[K`);
    this.#drawn = true;
  }

  /** Ends the line so the next output starts clean. */
  finish(): void {
    if (this.#drawn) this.#stream.write('\n');
    this.#drawn = false;
  }
}
