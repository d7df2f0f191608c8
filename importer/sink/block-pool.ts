// SPDX-License-Identifier: Apache-2.0
/**
 * Recycled 1 MiB output blocks. A decoder takes a block, fills it and pushes it; the sparse writer,
 * the last holder, gives it back once its bytes are on disk. Without this, every MiB of image data
 * was a fresh allocation: a GC pass and 256 page faults per MiB (measured: a third of a zstd
 * import's time went to `sys` and the collector). A block handed over (`handOverBlock`) comes
 * back from whichever last consumer frees it, the qcow2 converter's window too; others that reach
 * another consumer are collected as usual.
 */
import { handOver } from '../../common/handed-over.js';

export const POOL_BLOCK_BYTES = 1 << 20;
/** Spare blocks kept at most (16 MiB). */
const MAX_SPARE_BLOCKS = 16;

const spare: ArrayBuffer[] = [];
/** Blocks this pool made; only those may come back. */
const made = new WeakSet<ArrayBufferLike>();
/** Blocks currently in {@link spare}, so a block is never given back twice. */
const resting = new WeakSet<ArrayBufferLike>();

/** A block of {@link POOL_BLOCK_BYTES}, recycled when one is free. Its content is undefined. */
export function takeBlock(): Buffer {
  const recycled = spare.pop();
  if (recycled !== undefined) {
    resting.delete(recycled);
    return Buffer.from(recycled, 0, POOL_BLOCK_BYTES);
  }
  const fresh = new ArrayBuffer(POOL_BLOCK_BYTES);
  made.add(fresh);
  return Buffer.from(fresh, 0, POOL_BLOCK_BYTES);
}

/**
 * Hands a block of ours over (common/handed-over.ts): `view`, the block's data from its start, is
 * the only view that carries data, and whoever frees it gives the memory back to this pool.
 */
export function handOverBlock(view: Buffer): void {
  handOver(view, { sole: true, reuse: takeBack });
}

/** Memory of a block of ours that was handed over and freed, moved into a new ArrayBuffer. */
function takeBack(memory: ArrayBuffer): void {
  if (memory.byteLength !== POOL_BLOCK_BYTES || spare.length >= MAX_SPARE_BLOCKS) return;
  made.add(memory);
  resting.add(memory);
  spare.push(memory);
}

/** Gives back the block behind `view` if it is one of ours; the caller holds no view of it after. */
export function giveBlock(view: Buffer): void {
  const buffer = view.buffer;
  if (!made.has(buffer) || resting.has(buffer) || spare.length >= MAX_SPARE_BLOCKS) return;
  resting.add(buffer);
  spare.push(buffer as ArrayBuffer);
}
