// SPDX-License-Identifier: Apache-2.0
/**
 * Cuts extents (qcow2 L2 tables, block maps, stream windows) into units of work: chunks of at most
 * {@link CHUNK_BYTES} guest bytes holding data or compressed clusters (small zero gaps included),
 * and zero runs between them. Pure; the extents are 5 numbers each (extents.ts).
 */
import { EXTENT_FIELDS, ExtentKind, extentsOf, type Extent } from './extents.js';

export { EXTENT_FIELDS, ExtentKind };

/** Guest bytes per chunk: a few MiB of buffers per chunk in flight. */
export const CHUNK_BYTES = 2 * 1024 * 1024;
/** Zero runs at least this long end a chunk instead of being copied as zeros. */
export const ZERO_BREAK_BYTES = 64 * 1024;

/** A guest range that reads as zeros. */
export interface ZeroRun {
  readonly type: 'zero';
  readonly offset: number;
  readonly length: number;
}

/** A guest range with data, for `Qcow2Map.processChunk`. */
export interface Chunk {
  readonly type: 'chunk';
  readonly guestOffset: number;
  readonly guestLength: number;
  readonly extents: Float64Array;
}

/** One unit of work. */
export type WorkItem = ZeroRun | Chunk;

/** Stateful cutter: feed extents in guest order with `push`, then `flush` once. */
export class Chunker {
  #chunkStart = -1;
  #chunkEnd = 0;
  #fields: number[] = [];
  #zeroStart = -1;
  #zeroEnd = 0;
  readonly #maxChunk: number;
  readonly #contiguousOnly: boolean;

  /**
   * @param contiguousOnly - never bridge a guest gap with zeros (the stream converter sees
   *   extents out of guest order; a gap may belong to data written by another window).
   */
  constructor(options: { readonly maxChunk?: number; readonly contiguousOnly?: boolean } = {}) {
    this.#maxChunk = options.maxChunk ?? CHUNK_BYTES;
    this.#contiguousOnly = options.contiguousOnly ?? false;
  }

  /** Adds extents; returns the work items completed by them. */
  push(extents: Float64Array): WorkItem[] {
    const out: WorkItem[] = [];
    for (const e of extentsOf(extents)) {
      if (e.kind === ExtentKind.Zero) this.#zero(e.guest, e.length, out);
      else if (e.kind === ExtentKind.Data) this.#data(e.guest, e.length, e.host, out);
      else this.#compressed(e, out);
    }
    return out;
  }

  /** Returns what is left. */
  flush(): WorkItem[] {
    const out: WorkItem[] = [];
    this.#flushChunk(out);
    this.#flushZero(out);
    return out;
  }

  #zero(guest: number, length: number, out: WorkItem[]): void {
    if (
      this.#chunkStart >= 0 &&
      length < ZERO_BREAK_BYTES &&
      guest + length - this.#chunkStart <= this.#maxChunk
    ) {
      this.#chunkEnd = guest + length;
      return;
    }
    this.#flushChunk(out);
    if (this.#zeroStart >= 0 && this.#zeroEnd === guest) {
      this.#zeroEnd = guest + length;
      return;
    }
    this.#flushZero(out);
    this.#zeroStart = guest;
    this.#zeroEnd = guest + length;
  }

  #data(guest: number, length: number, host: number, out: WorkItem[]): void {
    this.#flushZero(out);
    let g = guest;
    let h = host;
    let left = length;
    this.#breakIfGap(g, out);
    while (left > 0) {
      if (this.#chunkStart >= 0 && this.#chunkStart + this.#maxChunk <= g) this.#flushChunk(out);
      if (this.#chunkStart < 0) this.#chunkStart = g;
      const take = Math.min(left, this.#chunkStart + this.#maxChunk - g);
      this.#fields.push(g, take, ExtentKind.Data, h, take);
      this.#chunkEnd = g + take;
      g += take;
      h += take;
      left -= take;
    }
  }

  #compressed(e: Extent, out: WorkItem[]): void {
    this.#flushZero(out);
    const end = e.guest + e.length;
    this.#breakIfGap(e.guest, out);
    if (this.#chunkStart >= 0 && end - this.#chunkStart > this.#maxChunk) this.#flushChunk(out);
    if (this.#chunkStart < 0) this.#chunkStart = e.guest;
    this.#fields.push(e.guest, e.length, e.kind, e.host, e.hostLength);
    this.#chunkEnd = end;
  }

  #breakIfGap(guest: number, out: WorkItem[]): void {
    if (this.#chunkStart >= 0 && guest !== this.#chunkEnd) {
      if (this.#contiguousOnly || guest < this.#chunkEnd) this.#flushChunk(out);
    }
  }

  #flushChunk(out: WorkItem[]): void {
    if (this.#chunkStart < 0) return;
    out.push({
      type: 'chunk',
      guestOffset: this.#chunkStart,
      guestLength: this.#chunkEnd - this.#chunkStart,
      extents: Float64Array.from(this.#fields),
    });
    this.#chunkStart = -1;
    this.#fields = [];
  }

  #flushZero(out: WorkItem[]): void {
    if (this.#zeroStart < 0) return;
    out.push({ type: 'zero', offset: this.#zeroStart, length: this.#zeroEnd - this.#zeroStart });
    this.#zeroStart = -1;
  }
}

/** Host byte ranges a chunk reads, clamped to `size`, sorted and merged across small gaps. */
export function hostRanges(
  extents: Float64Array,
  size: number,
  maxGap = 64 * 1024,
): { offset: number; length: number }[] {
  const ranges: [number, number][] = [];
  for (const e of extentsOf(extents)) {
    if (e.kind === ExtentKind.Zero) continue;
    const end = Math.min(size, e.host + e.hostLength);
    if (end > e.host) ranges.push([e.host, end]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const out: { offset: number; length: number }[] = [];
  let cur: [number, number] | undefined;
  for (const r of ranges) {
    if (cur !== undefined && r[0] <= cur[1] + maxGap) {
      cur[1] = Math.max(cur[1], r[1]);
    } else {
      if (cur !== undefined) out.push({ offset: cur[0], length: cur[1] - cur[0] });
      cur = [r[0], r[1]];
    }
  }
  if (cur !== undefined) out.push({ offset: cur[0], length: cur[1] - cur[0] });
  return out;
}
