// SPDX-License-Identifier: Apache-2.0
/**
 * Recycled 1 MiB output blocks. A decoder takes a block, fills it and hands it over as it pushes
 * it (common/handed-over.ts); the last holder (the sparse writer, the qcow2 converter's window)
 * frees it once its bytes are on disk, which brings the memory back here. Without this, every MiB
 * of image data was a fresh allocation: a GC pass and 256 page faults per MiB (measured: a third
 * of a zstd import's time went to `sys` and the collector). A block that only reaches a consumer
 * as slices (a tar parser's) is never freed by one and is collected as usual.
 */
import { handOver } from '../../common/handed-over.js';

/** Blocks of one size, recycled through the hand-over of their views. */
export class BlockPool {
  readonly #blockBytes: number;
  readonly #maxSpare: number;
  readonly #spare: ArrayBuffer[] = [];
  /**
   * Memory of a block of ours that was handed over and freed, moved into a new ArrayBuffer no old
   * view reaches; each hand-over frees once, so a block never comes back twice.
   */
  readonly #takeBack = (memory: ArrayBuffer): void => {
    if (memory.byteLength === this.#blockBytes && this.#spare.length < this.#maxSpare)
      this.#spare.push(memory);
  };

  /** Blocks of `blockBytes`; at most `maxSpare` kept for reuse. */
  constructor(blockBytes: number, maxSpare: number) {
    this.#blockBytes = blockBytes;
    this.#maxSpare = maxSpare;
  }

  /** A block, recycled when one is free. Its content is undefined (never zero-filled). */
  take(): Buffer {
    const memory = this.#spare.pop();
    return memory === undefined ? Buffer.allocUnsafeSlow(this.#blockBytes) : Buffer.from(memory);
  }

  /**
   * Hands a block of ours over (common/handed-over.ts): `view`, the block's data from its start,
   * is the only view that carries data, and whoever frees it gives the memory back to this pool.
   */
  handOver(view: Buffer): void {
    handOver(view, { sole: true, reuse: this.#takeBack });
  }
}

export const POOL_BLOCK_BYTES = 1 << 20;
/** The decoders' output blocks: at most 16 MiB kept spare. */
const decoderBlocks = new BlockPool(POOL_BLOCK_BYTES, 16);

/** A block of {@link POOL_BLOCK_BYTES}, recycled when one is free. Its content is undefined. */
export function takeBlock(): Buffer {
  return decoderBlocks.take();
}

/** Hands a decoder's block over: its memory comes back to the pool once the last holder frees it. */
export function handOverBlock(view: Buffer): void {
  decoderBlocks.handOver(view);
}
