// SPDX-License-Identifier: Apache-2.0
/**
 * The stream converter's window as the list of chunks it arrived in, addressed by host offset.
 * Data clusters reach the native workers as the chunks themselves (the reader gathers across
 * them), so the socket's buffers are never copied into one window buffer; only metadata that
 * straddles two chunks (a table, the header) is gathered into a buffer of its own.
 *
 * Chunks handed over by their producer (common/handed-over.ts) are freed as soon as the window
 * has dropped them and no lent piece of them is still being written.
 */
import { CdiError, ErrorCodes } from '../common/errors.js';
import { freeHandedOver, isHandedOver } from '../common/handed-over.js';

/** Host bytes as pieces with their host offsets, the shape the native chunk workers take. */
export interface Pieces {
  readonly pieces: Buffer[];
  readonly pieceOffsets: number[];
}

/** Pieces lent to a native worker; `release` once it no longer reads them. */
export interface LentPieces extends Pieces {
  release(): void;
}

/** See the module comment. */
export class WindowParts {
  #parts: Buffer[] = [];
  /** Host offset of each part. */
  #offsets: number[] = [];
  #start: number;
  #end: number;
  /** Pieces lent out per chunk memory, and the memories dropped while some were lent. */
  readonly #lent = new Map<ArrayBufferLike, number>();
  readonly #dropped = new Map<ArrayBufferLike, Buffer>();

  /** An empty window whose first byte will be at host offset `start`. */
  constructor(start = 0) {
    this.#start = start;
    this.#end = start;
  }

  /** Host offset of the first byte held. */
  get start(): number {
    return this.#start;
  }

  /** Host offset just past the last byte held. */
  get end(): number {
    return this.#end;
  }

  /** Bytes held. */
  get length(): number {
    return this.#end - this.#start;
  }

  /** Appends the next bytes of the stream (kept, not copied). */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#parts.push(chunk);
    this.#offsets.push(this.#end);
    this.#end += chunk.length;
  }

  /**
   * Host bytes [from, to) as one buffer: a view when one part holds them, else a copy.
   * Throws when the window does not hold them all.
   */
  slice(from: number, to: number): Buffer {
    this.#check(from, to);
    const i = this.#partAt(from);
    const part = this.#parts[i];
    const offset = this.#offsets[i];
    if (part !== undefined && offset !== undefined && to <= offset + part.length) {
      return part.subarray(from - offset, to - offset);
    }
    const { pieces } = this.pieces(from, to);
    return Buffer.concat(pieces, to - from);
  }

  /** Host bytes [from, to) as views of the parts holding them, in order, trimmed to the range. */
  pieces(from: number, to: number): Pieces {
    this.#check(from, to);
    const pieces: Buffer[] = [];
    const pieceOffsets: number[] = [];
    for (let i = this.#partAt(from); i < this.#parts.length; i++) {
      const part = this.#parts[i];
      const offset = this.#offsets[i];
      if (part === undefined || offset === undefined || offset >= to) break;
      const a = Math.max(from, offset);
      const b = Math.min(to, offset + part.length);
      if (a < b) {
        pieces.push(
          a === offset && b === offset + part.length ? part : part.subarray(a - offset, b - offset),
        );
        pieceOffsets.push(a);
      }
    }
    return { pieces, pieceOffsets };
  }

  /** Like {@link pieces}, counted as lent until `release` is called (once). */
  lend(from: number, to: number): LentPieces {
    const { pieces, pieceOffsets } = this.pieces(from, to);
    const memories = pieces.map((p) => p.buffer).filter((m) => isHandedOver(m));
    for (const m of memories) this.#lent.set(m, (this.#lent.get(m) ?? 0) + 1);
    let released = false;
    return {
      pieces,
      pieceOffsets,
      release: () => {
        if (released) return;
        released = true;
        for (const m of memories) {
          const left = (this.#lent.get(m) ?? 1) - 1;
          if (left > 0) {
            this.#lent.set(m, left);
            continue;
          }
          this.#lent.delete(m);
          const part = this.#dropped.get(m);
          this.#dropped.delete(m);
          if (part !== undefined) freeHandedOver(part);
        }
      },
    };
  }

  /** Forgets the bytes before host offset `offset` (the rest is carried to the next window). */
  dropBefore(offset: number): void {
    if (offset <= this.#start) return;
    const whole = this.#parts.filter((p, i) => (this.#offsets[i] ?? 0) + p.length <= offset);
    for (const part of whole) this.#forget(part);
    if (offset >= this.#end) {
      this.#parts = [];
      this.#offsets = [];
      this.#start = offset;
      this.#end = offset;
      return;
    }
    const i = this.#partAt(offset);
    const parts = this.#parts.slice(i);
    const offsets = this.#offsets.slice(i);
    const [first] = parts;
    const firstOffset = offsets[0];
    if (first !== undefined && firstOffset !== undefined && firstOffset < offset) {
      parts[0] = first.subarray(offset - firstOffset);
      offsets[0] = offset;
    }
    this.#parts = parts;
    this.#offsets = offsets;
    this.#start = offset;
  }

  /** Frees a dropped chunk's memory now, or when its last lent piece is released. */
  #forget(part: Buffer): void {
    const memory = part.buffer;
    if (!isHandedOver(memory)) return;
    if (this.#lent.has(memory)) this.#dropped.set(memory, part);
    else freeHandedOver(part);
  }

  #check(from: number, to: number): void {
    if (from < this.#start || to > this.#end || from > to) {
      throw new CdiError(
        ErrorCodes.Internal,
        `stream window [${this.#start}, ${this.#end}) does not hold bytes [${from}, ${to})`,
      );
    }
  }

  /** Index of the part holding host offset `offset` (the last part starting at or before it). */
  #partAt(offset: number): number {
    let lo = 0;
    let hi = this.#offsets.length - 1;
    let best = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#offsets[mid] ?? Number.POSITIVE_INFINITY) <= offset) {
        best = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return best;
  }
}
