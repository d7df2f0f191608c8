// SPDX-License-Identifier: Apache-2.0
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { zeroRange } from '../../native/index.js';
import type { RawTarget } from '../sink/raw-target.js';
import { SparseWriter } from '../sink/sparse-writer.js';

/** Options of {@link writeRawStream}. */
export interface RawWriteOptions {
  readonly input: Readable;
  readonly target: RawTarget;
  readonly signal: AbortSignal;
}

/** qemu-img sizes raw images in whole 512-byte sectors. */
export const SECTOR_BYTES = 512;

/**
 * Passes bytes through and, at the end, adds zeros up to the next multiple of 512: qemu-img (and
 * so CDI, which converts every image with it) reads a raw image of 67,107,864 bytes as one of
 * 67,108,352, its last sector completed with zeros. The zeros go through the sparse writer like
 * any others (a hole on a file, written out on a block device).
 */
export class SectorPad extends Transform {
  #length = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.#length += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const partial = this.#length % SECTOR_BYTES;
    callback(null, partial === 0 ? undefined : Buffer.alloc(SECTOR_BYTES - partial));
  }
}

/**
 * Streams a raw image into the target, completing its last 512-byte sector with zeros, sparsely, refusing to grow past the usable space. This is
 * the transfer's one awaited `pipeline()`; earlier stages are linked to `input`.
 */
export async function writeRawStream(
  options: RawWriteOptions,
): Promise<{ size: number; dataBytes: number }> {
  const { target } = options;
  const writer = new SparseWriter({
    fd: target.fd,
    targetName: target.options.path,
    kind: target.kind,
    limit: target.usable,
    zeroRange,
    ...(target.directFd === undefined ? {} : { directFd: target.directFd }),
  });
  await pipeline(options.input, new SectorPad(), writer, { signal: options.signal });
  return { size: writer.position, dataBytes: writer.dataBytes };
}
