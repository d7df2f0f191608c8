// SPDX-License-Identifier: Apache-2.0
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Duplex } from 'node:stream';
import { CdiError, ErrorCodes, errorMessage } from '../../common/errors.js';
import { freeHandedOver } from '../../common/handed-over.js';
import { assertBuiltForThisNode } from '../../native/abi.js';
import { POOL_BLOCK_BYTES, handOverBlock, takeBlock } from '../sink/block-pool.js';
import { isZero, ZERO_BLOCK } from '../sink/zero-block.js';

/** Output is produced in blocks of this size, one block per push. */
const OUTPUT_BLOCK_BYTES = POOL_BLOCK_BYTES;
const EMPTY = Buffer.alloc(0);

/** The part of zstd-napi's raw binding we use (`ZSTD_DCtx` and `ZSTD_decompressStream`). */
interface ZstdDCtx {
  decompressStream(
    dst: Uint8Array,
    src: Uint8Array,
  ): [remaining: number, produced: number, consumed: number];
}
interface ZstdBinding {
  readonly DCtx: new () => ZstdDCtx;
}

const require = createRequire(import.meta.url);
assertBuiltForThisNode(
  'zstd-napi',
  join(dirname(require.resolve('zstd-napi/package.json')), 'build'),
);
const binding = require('zstd-napi/binding') as ZstdBinding;

/**
 * A zstd decoder that produces output only on demand. zstd-napi's own `DecompressStream` pushes
 * every byte an input chunk expands to before it returns, and zstd expands zero runs a
 * thousand-fold: behind a slower sink a sparse image then sat in memory (900 MB RSS for a 2 GiB
 * image). Here a write is acknowledged only once its input is consumed, and each `_read` decodes
 * one block, so memory stays at a few blocks whatever the ratio.
 */
export class ZstdDecoder extends Duplex {
  readonly #dctx = new binding.DCtx();
  #input: Buffer | undefined;
  /** The chunk `#input` is the rest of: freed once consumed when it was handed over. */
  #inputChunk: Buffer | undefined;
  #inputDone: ((error?: Error | null) => void) | undefined;
  #ending: ((error?: Error | null) => void) | undefined;
  #wanted = false;
  /** True while the current frame is not complete (a stream must end on a frame boundary). */
  #inFrame = false;
  #outputPending = false;
  /** The block being filled, and how much of it is; reused while its content was zeros. */
  #block: Buffer | undefined;
  #blockLength = 0;

  constructor() {
    super({ readableHighWaterMark: 2 * OUTPUT_BLOCK_BYTES, writableHighWaterMark: 1 << 20 });
  }

  override _write(
    chunk: Buffer,
    _enc: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    this.#input = chunk;
    this.#inputChunk = chunk;
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

  #pump(): void {
    try {
      while (this.#wanted) {
        const input = this.#input ?? EMPTY;
        if (input.length === 0 && !this.#outputPending) {
          // Everything given so far is decoded: ask for the next chunk, or end. A partly filled
          // block waits for more input; only the end flushes it.
          const done = this.#inputDone;
          this.#inputDone = undefined;
          this.#input = undefined;
          if (this.#inputChunk !== undefined) freeHandedOver(this.#inputChunk);
          this.#inputChunk = undefined;
          if (done !== undefined) done();
          else if (this.#ending !== undefined) {
            this.#emit();
            this.#finish();
          }
          return;
        }
        const out = (this.#block ??= takeBlock());
        const [remaining, produced, consumed] = this.#dctx.decompressStream(
          out.subarray(this.#blockLength),
          input,
        );
        // A call that moved nothing returns the next frame's header size: not a truncation.
        if (consumed > 0 || produced > 0) this.#inFrame = remaining !== 0;
        this.#input = input.subarray(consumed);
        this.#blockLength += produced;
        // A full output block may leave more decoded bytes inside zstd's window.
        this.#outputPending = this.#blockLength === OUTPUT_BLOCK_BYTES;
        if (this.#outputPending) this.#emit();
      }
    } catch (err) {
      this.destroy(
        new CdiError(ErrorCodes.DecompressFailed, `zstd stream is corrupt: ${errorMessage(err)}`, {
          cause: err,
        }),
      );
    }
  }

  /**
   * Pushes the current block. Only whole blocks are pushed before the end: pushing each call's
   * output would hand out 64 KiB views of 1 MiB buffers when input arrives in socket-sized
   * chunks (16 GiB allocated per GiB of data, and the GC storm that goes with it).
   */
  #emit(): void {
    const out = this.#block;
    const length = this.#blockLength;
    if (out === undefined || length === 0) return;
    this.#blockLength = 0;
    if (isZero(out.subarray(0, length))) {
      // Zeros: hand out the shared zero block and keep our buffer for the next block.
      this.#wanted = this.push(ZERO_BLOCK.subarray(0, length));
    } else {
      this.#block = undefined;
      const data = out.subarray(0, length);
      handOverBlock(data);
      this.#wanted = this.push(data);
    }
  }

  #finish(): void {
    const ending = this.#ending;
    this.#ending = undefined;
    if (this.#inFrame) {
      ending?.(
        new CdiError(
          ErrorCodes.DecompressFailed,
          'zstd stream is truncated: it ends in the middle of a frame',
        ),
      );
      return;
    }
    this.push(null);
    ending?.();
  }
}
