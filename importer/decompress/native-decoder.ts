// SPDX-License-Identifier: Apache-2.0
import { availableParallelism } from 'node:os';
import { Duplex } from 'node:stream';
import { CdiError, ErrorCodes, errorCode, errorMessage } from '../../common/errors.js';
import { freeHandedOver } from '../../common/handed-over.js';
import { createStreamDecoder, type RawDecodeStep, type StreamDecoder } from '../../native/index.js';
import { POOL_BLOCK_BYTES, handOverBlock, takeBlock } from '../sink/block-pool.js';
import { ZERO_BLOCK } from '../sink/zero-block.js';

/** Formats the addon decodes. */
export type NativeDecoderFormat = 'xz' | 'gzip';

/** Output is pushed in blocks of this size. */
const BLOCK_BYTES = POOL_BLOCK_BYTES;
/**
 * Blocks one call may fill. Each call is a round trip to the libuv pool and back, and on a busy
 * machine every wake-up waits for a core: one block per call spent seconds of a 4 GiB import in
 * those hand-overs. The readable side then holds at most this many blocks beyond its high-water
 * mark.
 */
const BLOCKS_PER_CALL = 4;
/** Compressed input queued while a call runs goes to the next call at once, up to this. */
const INPUT_BATCH_BYTES = 8 << 20;
/** xz decodes blocks in parallel on this many threads at most (the importer asks for 2 CPUs). */
const MAX_XZ_THREADS = 2;

/** The block being filled: decoded bytes wait here until a whole block is ready. */
interface PartialBlock {
  readonly block: Buffer;
  readonly length: number;
  readonly zero: boolean;
}

/** One decode call: the blocks it fills, and the state of the first (the partial block). */
interface DecodeCall {
  readonly blocks: readonly Buffer[];
  readonly firstOffset: number;
  readonly firstZero: boolean;
  /** No input follows this call's. */
  readonly finish: boolean;
}

/**
 * A decoder that runs in the native addon (xz: liblzma's multi-threaded decoder; gzip: ISA-L's
 * inflate) on the libuv pool: no pipe to a child process, no 64 KiB pieces to zero-check and copy
 * on the event loop (ADR 0035).
 *
 * Output is produced on demand, as in ZstdDecoder: decoding continues only while the readable side
 * wants data, so a decompression bomb holds a few blocks whatever its ratio. Consumed input is
 * acknowledged at once, even while decoded output is pending, so that xz's threads receive the
 * next blocks while one drains. The addon reports whether each block it wrote is zeros; an
 * all-zero block is pushed as a view of ZERO_BLOCK and its buffer reused.
 */
export class NativeDecoder extends Duplex {
  readonly #format: NativeDecoderFormat;
  #decoder: StreamDecoder | undefined;
  /** Compressed input not yet consumed, in the pieces it arrived in. */
  #input: Buffer[] = [];
  #inputDone: ((error?: Error | null) => void) | undefined;
  #ending: ((error?: Error | null) => void) | undefined;
  #wanted = false;
  #running = false;
  /** The last call filled every block: the decoder may hold more output without more input. */
  #outputPending = false;
  #partial: PartialBlock | undefined;
  /** Blocks of ours that hold nothing (their zeros went out as ZERO_BLOCK views). */
  readonly #spare: Buffer[] = [];

  constructor(format: NativeDecoderFormat) {
    super({ readableHighWaterMark: 2 * BLOCK_BYTES, writableHighWaterMark: INPUT_BATCH_BYTES });
    this.#format = format;
    const threads = format === 'xz' ? Math.min(MAX_XZ_THREADS, availableParallelism()) : 1;
    this.#decoder = createStreamDecoder(format, threads);
  }

  override _write(
    chunk: Buffer,
    _enc: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    this.#input = chunk.length > 0 ? [chunk] : [];
    this.#inputDone = callback;
    this.#pump();
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    this.#input = chunks.map((c) => c.chunk).filter((c) => c.length > 0);
    this.#inputDone = callback;
    this.#pump();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#ending = callback;
    this.#pump();
  }

  override _read(): void {
    this.#wanted = true;
    this.#pump();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#close();
    callback(err);
  }

  #pump(): void {
    if (this.#running || !this.#wanted || this.destroyed) return;
    const decoder = this.#decoder;
    if (decoder === undefined || !this.#hasWork()) return;
    const partial = this.#partial;
    this.#partial = undefined;
    const blocks = [partial?.block ?? this.#takeBlock()];
    while (blocks.length < BLOCKS_PER_CALL) blocks.push(this.#takeBlock());
    const call: DecodeCall = {
      blocks,
      firstOffset: partial?.length ?? 0,
      firstZero: partial?.zero ?? true,
      finish: this.#ending !== undefined,
    };
    this.#running = true;
    decoder.decode(this.#input, blocks, call.firstOffset, call.finish).then(
      (step) => {
        this.#running = false;
        if (!this.destroyed) this.#took(step, call);
      },
      (err: unknown) => {
        this.#running = false;
        this.destroy(this.#error(err));
      },
    );
  }

  /**
   * True when a decode call has something to do: input, output still inside the decoder, or the
   * end to confirm. Input all consumed is acknowledged here; a chunk already queued then arrives
   * synchronously and starts the next call from _write.
   */
  #hasWork(): boolean {
    if (this.#input.length > 0) return true;
    const done = this.#inputDone;
    if (done !== undefined) {
      this.#inputDone = undefined;
      done();
      if (this.#running || this.#inputDone !== undefined) return false;
    }
    return this.#outputPending || this.#ending !== undefined;
  }

  #took(step: RawDecodeStep, call: DecodeCall): void {
    this.#dropInput(step.consumed);
    const { blocks, firstOffset } = call;
    this.#outputPending = step.produced === blocks.length * BLOCK_BYTES - firstOffset;
    let left = step.produced;
    blocks.forEach((block, i) => {
      const start = i === 0 ? firstOffset : 0;
      const got = Math.min(left, BLOCK_BYTES - start);
      left -= got;
      const length = start + got;
      const zero = (i === 0 ? call.firstZero : true) && (got === 0 || step.zero[i] === true);
      if (length === BLOCK_BYTES) this.#emit(block, length, zero);
      else if (length > 0) this.#partial = { block, length, zero };
      else this.#spare.push(block);
    });
    if (step.ended) {
      this.#end();
      return;
    }
    if (call.finish && step.consumed === 0 && step.produced === 0) {
      // The addon reports truncation itself; this only guards against asking forever.
      this.destroy(
        new CdiError(ErrorCodes.DecompressFailed, `${this.#format} stream is truncated`),
      );
      return;
    }
    this.#pump();
  }

  /** The stream is complete: the last, shorter block goes out, then the end. */
  #end(): void {
    const partial = this.#partial;
    this.#partial = undefined;
    if (partial !== undefined) this.#emit(partial.block, partial.length, partial.zero);
    this.#close();
    this.push(null);
    const ending = this.#ending;
    this.#ending = undefined;
    ending?.();
  }

  /** Pushes one whole block (or the last, shorter one): zeros as a view of ZERO_BLOCK. */
  #emit(block: Buffer, length: number, zero: boolean): void {
    if (zero) {
      this.#wanted = this.push(ZERO_BLOCK.subarray(0, length));
      this.#spare.push(block);
    } else {
      // Handed over: the last consumer (the raw sink, the qcow2 converter's window) gives the
      // memory back to the pool once written, instead of leaving it to a full collection.
      const out = block.subarray(0, length);
      handOverBlock(out);
      this.#wanted = this.push(out);
    }
  }

  /** Drops `bytes` consumed bytes from the front of the input. */
  #dropInput(bytes: number): void {
    let left = bytes;
    for (let first = this.#input[0]; first !== undefined; first = this.#input[0]) {
      if (first.length > left) {
        this.#input[0] = first.subarray(left);
        return;
      }
      left -= first.length;
      this.#input.shift();
      // Consumed, and the call that read it is over: a handed-over download chunk goes now.
      freeHandedOver(first);
    }
  }

  #takeBlock(): Buffer {
    return this.#spare.pop() ?? takeBlock();
  }

  #close(): void {
    this.#decoder?.close();
    this.#decoder = undefined;
  }

  #error(err: unknown): CdiError {
    if (err instanceof CdiError) return err;
    if (errorCode(err) === ErrorCodes.DecompressFailed) {
      return new CdiError(ErrorCodes.DecompressFailed, errorMessage(err), { cause: err });
    }
    return new CdiError(
      ErrorCodes.DecompressFailed,
      `${this.#format} decoder failed: ${errorMessage(err)}`,
      { cause: err },
    );
  }
}
