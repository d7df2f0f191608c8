// SPDX-License-Identifier: Apache-2.0
import { POOL_BLOCK_BYTES, handOverBlock, takeBlock } from '../sink/block-pool.js';
import { isZero, ZERO_BLOCK } from '../sink/zero-block.js';

/**
 * Turns small decoded pieces (64 KiB pipe reads of a decoder tool) into the sink's preferred
 * shape, in order: data gathered into pooled 1 MiB blocks, zero pieces merged into views of
 * {@link ZERO_BLOCK}. A 4 GiB image then crosses the stream machinery as 4096 blocks instead of
 * 65536 pieces, and its zeros are never copied.
 */
export class BlockCoalescer {
  readonly #emit: (block: Buffer) => boolean;
  #block: Buffer | undefined;
  #length = 0;
  #zeroRun = 0;

  /** `emit` pushes one block downstream and says whether more are welcome (Readable.push). */
  constructor(emit: (block: Buffer) => boolean) {
    this.#emit = emit;
  }

  /** Adds decoded bytes; false when the consumer asked to pause. */
  add(piece: Buffer): boolean {
    let more = true;
    if (isZero(piece)) {
      more = this.#flushData() && more;
      this.#zeroRun += piece.length;
      if (this.#zeroRun >= POOL_BLOCK_BYTES) more = this.#flushZeros() && more;
      return more;
    }
    more = this.#flushZeros() && more;
    for (let off = 0; off < piece.length;) {
      const block = (this.#block ??= takeBlock());
      const n = Math.min(POOL_BLOCK_BYTES - this.#length, piece.length - off);
      piece.copy(block, this.#length, off, off + n);
      this.#length += n;
      off += n;
      if (this.#length === POOL_BLOCK_BYTES) more = this.#flushData() && more;
    }
    return more;
  }

  /** Emits whatever is held; call once at the end of the input. */
  flush(): boolean {
    const more = this.#flushZeros();
    return this.#flushData() && more;
  }

  #flushData(): boolean {
    const block = this.#block;
    if (block === undefined || this.#length === 0) return true;
    const length = this.#length;
    this.#block = undefined;
    this.#length = 0;
    const data = block.subarray(0, length);
    handOverBlock(data);
    return this.#emit(data);
  }

  #flushZeros(): boolean {
    let more = true;
    while (this.#zeroRun > 0) {
      const n = Math.min(this.#zeroRun, ZERO_BLOCK.length);
      this.#zeroRun -= n;
      more = this.#emit(ZERO_BLOCK.subarray(0, n)) && more;
    }
    return more;
  }
}
