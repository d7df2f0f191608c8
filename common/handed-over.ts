// SPDX-License-Identifier: Apache-2.0
/**
 * Receive buffers handed over whole by their producer (a download's or an upload's socket reads)
 * to the last consumer of the stream, which frees them the moment their bytes are on disk.
 *
 * Why: a socket read is its own ArrayBuffer, garbage-collected like any other. The stream
 * converters keep those buffers across a window and the native writes (tens of milliseconds), so
 * their small JavaScript wrappers outlive the young generation; the memory then goes back only
 * at a full mark-compact, and V8 starts one for every 64 MiB of such external memory. Measured on
 * a 1 GiB qcow2 import (ADR 0034): 16 mark-compacts and a concurrent-marking thread using about a
 * quarter of the CPU. Detaching the buffer frees its memory at once and skips that work.
 *
 * Only a buffer at the start of its memory is handed over: either exactly one ArrayBuffer (a
 * socket read of Node's), so no other bytes share it, or, when the producer says it is the `sole`
 * view of its memory carrying data, the front of one. The producer promises nobody else keeps a
 * view of it; the consumer frees it only when no native worker reads it any more. After that
 * every view of it reads as empty.
 */
/** What was handed over with a memory: the view's length, and where the memory goes back to. */
interface Handed {
  readonly length: number;
  readonly reuse: ((memory: ArrayBuffer) => void) | undefined;
}

const handedOver = new WeakMap<ArrayBuffer, Handed>();

/** How a chunk is handed over. */
export interface HandOverOptions {
  /** The producer made `chunk` the only view of its memory that carries data. */
  readonly sole?: boolean;
  /**
   * Takes the memory back for reuse instead of freeing it: it gets a new ArrayBuffer over the
   * same memory, while every old view reads as empty, so nothing stale can see the next bytes.
   */
  readonly reuse?: (memory: ArrayBuffer) => void;
}

/** Marks `chunk`'s memory as owned by whoever consumes the stream last. */
export function handOver(chunk: Buffer, options: HandOverOptions = {}): void {
  const memory = chunk.buffer;
  if (
    memory instanceof ArrayBuffer &&
    !memory.resizable &&
    chunk.byteOffset === 0 &&
    (options.sole === true || chunk.byteLength === memory.byteLength) &&
    chunk.byteLength > 0
  ) {
    handedOver.set(memory, { length: chunk.byteLength, reuse: options.reuse });
  }
}

/** True when `memory` was handed over and not freed yet. */
export function isHandedOver(memory: ArrayBufferLike): boolean {
  return memory instanceof ArrayBuffer && handedOver.has(memory);
}

/**
 * Frees the memory of `view`, or gives it back to its producer, when `view` is the very chunk
 * that was handed over (every view of the memory then reads as empty); else does nothing. A
 * slice of it is not enough: a parser (tar) may hand out one slice and keep the rest.
 */
export function freeHandedOver(view: Buffer): void {
  const memory = view.buffer;
  if (!(memory instanceof ArrayBuffer)) return;
  const handed = handedOver.get(memory);
  if (handed === undefined || view.byteOffset !== 0 || view.byteLength !== handed.length) return;
  handedOver.delete(memory);
  // transfer() detaches the old buffer: transfer(0) releases the memory at once, transfer()
  // moves it, uncopied, into a new buffer that no old view can reach.
  if (handed.reuse === undefined) memory.transfer(0);
  else handed.reuse(memory.transfer());
}
