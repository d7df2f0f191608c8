// SPDX-License-Identifier: Apache-2.0
/**
 * The whole content of a range-capable HTTP resource, read as consecutive segments over several
 * connections and emitted in order. It helps where one connection is the limit (per-connection
 * rate limits such as CDI's `limit_rate` test host, long round trips, slow mirrors: CDI #2358,
 * #2809); each segment is retried on its own, so a dropped connection costs at most one segment.
 * Memory is bounded by `connections × segmentBytes` plus the stream's buffer.
 */
import { Readable } from 'node:stream';

import { CdiError, ErrorCodes } from '../../common/errors.js';

/** Options of {@link ParallelRangeBody}. */
export interface ParallelRangeBodyOptions {
  /** Total length of the resource. */
  readonly length: number;
  readonly segmentBytes: number;
  /** Segments in flight at once. */
  readonly connections: number;
  /** Reads exactly `length` bytes at `offset` (the source's readRange, retries included). */
  readonly fetchSegment: (offset: number, length: number, signal: AbortSignal) => Promise<Buffer>;
  /** Segment 0, when already read (the probe that proved ranges work). */
  readonly first?: Buffer;
  readonly signal: AbortSignal;
}

/** See the module comment. */
export class ParallelRangeBody extends Readable {
  private readonly opts: ParallelRangeBodyOptions;
  private readonly count: number;
  private readonly inflight = new Map<number, Promise<Buffer>>();
  private readonly controller = new AbortController();
  private nextToStart = 0;
  private nextToEmit = 0;
  private pumping = false;
  private readonly onAbort = (): void => {
    this.destroy(
      new CdiError(ErrorCodes.Aborted, 'parallel download aborted', {
        cause: this.opts.signal.reason,
      }),
    );
  };

  constructor(opts: ParallelRangeBodyOptions) {
    // One segment is one chunk: highWaterMark 1 keeps at most one segment queued in the stream.
    super({ highWaterMark: 1 });
    this.opts = opts;
    this.count = Math.ceil(opts.length / opts.segmentBytes);
    if (opts.first !== undefined) {
      this.inflight.set(0, Promise.resolve(opts.first));
      this.nextToStart = 1;
    }
    if (opts.signal.aborted) queueMicrotask(this.onAbort);
    else opts.signal.addEventListener('abort', this.onAbort, { once: true });
    this.fill();
  }

  private fill(): void {
    while (
      this.inflight.size < this.opts.connections &&
      this.nextToStart < this.count &&
      !this.destroyed
    ) {
      const index = this.nextToStart++;
      const offset = index * this.opts.segmentBytes;
      const length = Math.min(this.opts.segmentBytes, this.opts.length - offset);
      const p = this.opts.fetchSegment(offset, length, this.controller.signal);
      // Failures surface when the segment's turn comes; never as an unhandled rejection.
      p.catch(() => undefined);
      this.inflight.set(index, p);
    }
  }

  override _read(): void {
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        if (this.nextToEmit >= this.count) {
          this.push(null);
          return;
        }
        const p = this.inflight.get(this.nextToEmit);
        if (p === undefined)
          throw new CdiError(ErrorCodes.Internal, `segment ${this.nextToEmit} was never started`);
        const buf = await p;
        if (this.destroyed) return;
        this.inflight.delete(this.nextToEmit);
        this.nextToEmit += 1;
        this.fill();
        if (!this.push(buf)) return;
      }
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.pumping = false;
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.opts.signal.removeEventListener('abort', this.onAbort);
    this.controller.abort(
      err ?? new CdiError(ErrorCodes.Aborted, 'parallel download stream destroyed'),
    );
    this.inflight.clear();
    callback(err);
  }
}
