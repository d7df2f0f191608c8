// SPDX-License-Identifier: Apache-2.0
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Counts the bytes as transferred (the bottom of the stack, like CDI's progress reader). Length
 * checks belong to the sources, which know what they announced.
 */
export class ByteCounter extends Transform {
  readonly #onBytes: (bytes: number) => void;

  constructor(onBytes: (bytes: number) => void) {
    super({ highWaterMark: 1 << 20 });
    this.#onBytes = onBytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.#onBytes(chunk.length);
    callback(null, chunk);
  }
}

/** Receives progress as a percentage, at most about once per interval. */
export type ProgressListener = (progress: ProgressSnapshot) => void;

/** One progress report. */
export interface ProgressSnapshot {
  readonly done: number;
  readonly total: number | undefined;
  /** 0..100 with two decimals, or undefined when the total is unknown. */
  readonly percent: number | undefined;
}

/**
 * Turns byte counts into throttled percentage reports. Progress only increases (CDI's metric is a
 * counter), and `complete()` reports 100.
 */
export class ProgressTracker {
  readonly #listener: ProgressListener;
  readonly #intervalMs: number;
  #total: number | undefined;
  #done = 0;
  #lastReport = 0;
  #lastPercent = -1;

  constructor(
    listener: ProgressListener,
    options: { readonly intervalMs?: number; readonly total?: number } = {},
  ) {
    this.#listener = listener;
    this.#intervalMs = options.intervalMs ?? 250;
    this.#total = options.total;
  }

  /** Sets or replaces the total (e.g. once a converter knows the virtual size). */
  setTotal(total: number | undefined): void {
    this.#total = total;
  }

  /** Adds transferred bytes. */
  add(bytes: number): void {
    this.#done += bytes;
    this.#maybeReport();
  }

  /** Sets absolute progress (converters report done/total). */
  set(done: number, total: number): void {
    this.#total = total;
    this.#done = done;
    this.#maybeReport();
  }

  /** Reports completion. */
  complete(): void {
    this.#report(100);
  }

  #maybeReport(): void {
    const now = Date.now();
    if (now - this.#lastReport < this.#intervalMs) return;
    this.#lastReport = now;
    const total = this.#total;
    if (total === undefined || total <= 0) {
      this.#listener({ done: this.#done, total, percent: undefined });
      return;
    }
    // Stay below 100 until complete(): the last bytes still have to be flushed and synced.
    const percent = Math.min(99.99, Math.floor((this.#done / total) * 10000) / 100);
    this.#report(percent);
  }

  #report(percent: number): void {
    if (percent < this.#lastPercent) return;
    this.#lastPercent = percent;
    this.#listener({ done: this.#done, total: this.#total, percent });
  }
}
