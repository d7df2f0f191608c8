// SPDX-License-Identifier: Apache-2.0
import { writev } from 'node:fs';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { toWriteError } from '../../common/errors.js';
import { sizeExceededError } from './space.js';
import { freeHandedOver } from '../../common/handed-over.js';
import { writeAt } from '../../native/index.js';
import { isZero, ZERO_BLOCK } from './zero-block.js';

const writevAsync = promisify(writev);

/** Zero runs shorter than this are written as data (qemu-img's default `-S 4k`). */
export const SPARSE_BLOCK_BYTES = 4096;
/** A batch of contiguous data is written with one writev once it reaches this size. */
const FLUSH_BYTES = 4 << 20;
/** writev takes at most IOV_MAX (1024) buffers on Linux. */
const MAX_IOVECS = 1024;

/** Makes `[offset, offset + length)` read back as zeros on a target whose old content is unknown. */
export type ZeroRangeFn = (fd: number, offset: number, length: number) => Promise<void>;

/** Options of {@link SparseWriter}. */
export interface SparseWriterOptions {
  readonly fd: number;
  /** For messages. */
  readonly targetName: string;
  /**
   * `file`: a fresh file whose holes read as zeros, so zero runs are skipped.
   * `block`: a device; zero runs are zeroed with `zeroRange` unless `targetIsZeroed`.
   */
  readonly kind: 'file' | 'block';
  readonly targetIsZeroed?: boolean;
  /** Bytes the image may occupy; writing past it fails with CDI_SIZE_VALIDATION. */
  readonly limit?: number;
  /** Zeroing for block targets; default writes zero buffers. */
  readonly zeroRange?: ZeroRangeFn;
  /** The target opened with O_DIRECT: batches are then written natively, past the page cache. */
  readonly directFd?: number;
}

/**
 * The raw sink's writer: consumes the raw image in order and writes it at increasing offsets,
 * leaving zero runs of {@link SPARSE_BLOCK_BYTES} or more as holes on file targets. Contiguous data
 * is gathered (by reference, no copy) into batches written with one `writev`; one batch is in
 * flight while the next one fills, so decoding and writing overlap, and memory stays bounded by two
 * batches.
 */
export class SparseWriter extends Writable {
  readonly #options: SparseWriterOptions;
  readonly #zeroRange: ZeroRangeFn;
  #position = 0;
  #dataBytes = 0;
  #batch: Buffer[] = [];
  #batchStart = 0;
  #batchBytes = 0;
  /** Whole chunks whose bytes are in the current batch; released once it is written. */
  #batchChunks: Buffer[] = [];
  readonly #holds = new Map<ArrayBufferLike, number>();
  #inFlight: Promise<void> = Promise.resolve();

  constructor(options: SparseWriterOptions) {
    super({ highWaterMark: 1 << 20 });
    this.#options = options;
    this.#zeroRange = options.zeroRange ?? writeZeros;
  }

  /** Bytes consumed so far: the raw image size once finished. */
  get position(): number {
    return this.#position;
  }

  /** Bytes actually written as data. */
  get dataBytes(): number {
    return this.#dataBytes;
  }

  override _write(
    chunk: Buffer,
    _enc: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    const limit = this.#options.limit;
    if (limit !== undefined && this.#position + chunk.length > limit) {
      callback(sizeExceededError(this.#position + chunk.length, limit, 'image size (at least)'));
      return;
    }
    this.#consume(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#flush()
      .then(() => this.#inFlight)
      .then(() => callback(), callback);
  }

  async #consume(chunk: Buffer): Promise<void> {
    // Held while being split into batches, and by every batch holding some of its bytes: the
    // chunk is freed (a pooled block goes back to its pool) only when the last of those is on disk.
    this.#hold(chunk);
    try {
      await this.#consumeBytes(chunk);
    } finally {
      this.#release(chunk);
    }
  }

  #hold(chunk: Buffer): void {
    this.#holds.set(chunk.buffer, (this.#holds.get(chunk.buffer) ?? 0) + 1);
  }

  #release(chunk: Buffer): void {
    const left = (this.#holds.get(chunk.buffer) ?? 1) - 1;
    if (left > 0) {
      this.#holds.set(chunk.buffer, left);
      return;
    }
    this.#holds.delete(chunk.buffer);
    // On disk: a handed-over chunk is freed, or goes back to its producer's pool.
    freeHandedOver(chunk);
  }

  async #consumeBytes(chunk: Buffer): Promise<void> {
    const start = this.#position;
    this.#position += chunk.length;
    if (this.#options.kind === 'block' && this.#options.targetIsZeroed !== true) {
      if (isZero(chunk)) await this.#zero(start, chunk.length);
      else await this.#add(start, chunk, chunk);
      return;
    }
    if (isZero(chunk)) return;
    // Walk the chunk in sparse blocks, adding each maximal run of non-zero blocks.
    let runStart = -1;
    for (let off = 0; off < chunk.length; off += SPARSE_BLOCK_BYTES) {
      const end = Math.min(off + SPARSE_BLOCK_BYTES, chunk.length);
      const zero = isZero(chunk.subarray(off, end));
      if (!zero && runStart < 0) runStart = off;
      if (zero && runStart >= 0) {
        await this.#add(start + runStart, chunk.subarray(runStart, off), chunk);
        runStart = -1;
      }
    }
    if (runStart >= 0) await this.#add(start + runStart, chunk.subarray(runStart), chunk);
  }

  async #add(offset: number, data: Buffer, owner: Buffer): Promise<void> {
    if (this.#batchBytes > 0 && offset !== this.#batchStart + this.#batchBytes) await this.#flush();
    if (this.#batchBytes === 0) this.#batchStart = offset;
    if (this.#batchChunks.at(-1) !== owner) {
      this.#hold(owner);
      this.#batchChunks.push(owner);
    }
    this.#batch.push(data);
    this.#batchBytes += data.length;
    if (this.#batchBytes >= FLUSH_BYTES || this.#batch.length >= MAX_IOVECS) await this.#flush();
  }

  async #zero(offset: number, length: number): Promise<void> {
    await this.#flush();
    await this.#inFlight;
    await this.#zeroRange(this.#options.fd, offset, length);
  }

  /** Starts writing the batch; waits for the previous batch first, so one write is in flight. */
  async #flush(): Promise<void> {
    if (this.#batchBytes === 0) return;
    const buffers = this.#batch;
    const chunks = this.#batchChunks;
    const position = this.#batchStart;
    const bytes = this.#batchBytes;
    this.#batch = [];
    this.#batchChunks = [];
    this.#batchBytes = 0;
    await this.#inFlight;
    const { fd, directFd } = this.#options;
    const written =
      directFd === undefined
        ? writeAll(fd, buffers, position)
        : writeAt(fd, directFd, buffers, position);
    this.#inFlight = written.then(
      () => {
        this.#dataBytes += bytes;
        // On disk now: the batch no longer needs these chunks.
        for (const chunk of chunks) this.#release(chunk);
      },
      (err: unknown) => {
        throw toWriteError(err, this.#options.targetName);
      },
    );
    // Surface a failure of this write at the latest on the next flush or in _final; avoid an
    // unhandled rejection in between.
    this.#inFlight.catch(() => undefined);
  }
}

async function writeAll(fd: number, buffers: Buffer[], position: number): Promise<void> {
  let pos = position;
  let rest = buffers;
  while (rest.length > 0) {
    let written = (await writevAsync(fd, rest, pos)).bytesWritten;
    pos += written;
    // Short writes are rare but legal: drop what was written and go on.
    const next: Buffer[] = [];
    for (const buf of rest) {
      if (written >= buf.length) {
        written -= buf.length;
        continue;
      }
      next.push(written > 0 ? buf.subarray(written) : buf);
      written = 0;
    }
    rest = next;
  }
}

/** Default zeroing: plain writes of zero buffers (a device that cannot discard still works). */
async function writeZeros(fd: number, offset: number, length: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const n = Math.min(ZERO_BLOCK.length, length - done);
    await writeAll(fd, [ZERO_BLOCK.subarray(0, n)], offset + done);
    done += n;
  }
}
