// SPDX-License-Identifier: Apache-2.0
/**
 * A pass-through stage that merges the chunks queued behind a slow consumer into one buffer, so
 * a TLS socket downstream encrypts and writes a few large buffers instead of many 16 KiB ones
 * (each write has a fixed cost in Node's TLS layer). It never waits for more input: chunks are
 * merged only when they are already waiting, so a slow client sees no added latency.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** Bytes the stage may hold on its input side before pausing the producer (a network stage). */
export const COALESCE_HIGH_WATER_MARK = 1 << 20;

/** See the module comment. */
export class Coalescer extends Transform {
  constructor() {
    super({ writableHighWaterMark: COALESCE_HIGH_WATER_MARK, readableHighWaterMark: 64 * 1024 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    callback(null, chunk);
  }

  // Called by Writable with every chunk that queued while the previous one was in flight.
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    const merged = Buffer.concat(chunks.map((c) => c.chunk));
    // The encoding is ignored for Buffers.
    this._write(merged, 'binary', callback);
  }
}
