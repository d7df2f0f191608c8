// SPDX-License-Identifier: Apache-2.0
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import { handOver, isHandedOver } from '../common/handed-over.js';
import { WindowParts } from './window-parts.js';

/** A window over `bytes` cut at `cuts` (offsets into bytes), starting at host offset `start`. */
function windowOf(bytes: Buffer, cuts: readonly number[], start = 0): WindowParts {
  const w = new WindowParts(start);
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    w.push(bytes.subarray(prev, c));
    prev = c;
  }
  return w;
}

/** Reassembles pieces into the bytes they cover, checking they are contiguous from `from`. */
function gather(pieces: readonly Buffer[], offsets: readonly number[], from: number): Buffer {
  let pos = from;
  for (const [i, p] of pieces.entries()) {
    expect(offsets[i]).toBe(pos);
    pos += p.length;
  }
  return Buffer.concat(pieces);
}

describe('WindowParts', () => {
  const bytes = randomBytes(1000);
  const cases = [
    { name: 'one part', cuts: [], from: 10, to: 900 },
    { name: 'inside the second part', cuts: [100, 500], from: 150, to: 450 },
    { name: 'across three parts', cuts: [100, 500], from: 50, to: 700 },
    { name: 'exactly one part', cuts: [100, 500], from: 100, to: 500 },
    { name: 'empty range', cuts: [100], from: 100, to: 100 },
    { name: 'the whole window', cuts: [1, 2, 3, 999], from: 0, to: 1000 },
  ];
  it.each(cases)('slice and pieces: $name', ({ cuts, from, to }) => {
    const start = 4096;
    const w = windowOf(bytes, cuts, start);
    const want = bytes.subarray(from, to);
    expect(w.slice(start + from, start + to).equals(want)).toBe(true);
    const { pieces, pieceOffsets } = w.pieces(start + from, start + to);
    expect(gather(pieces, pieceOffsets, start + from).equals(want)).toBe(true);
  });

  it('hands out views of its parts, not copies', () => {
    const w = windowOf(bytes, [100, 500]);
    const view = w.slice(150, 450);
    expect(view.buffer).toBe(bytes.buffer);
    const { pieces } = w.pieces(50, 700);
    for (const p of pieces) expect(p.buffer).toBe(bytes.buffer);
  });

  it.each([
    { name: 'inside a part', drop: 250 },
    { name: 'at a part boundary', drop: 500 },
    { name: 'at the start', drop: 0 },
  ])('keeps the bytes after dropBefore ($name)', ({ drop }) => {
    const w = windowOf(bytes, [100, 500]);
    w.dropBefore(drop);
    expect(w.start).toBe(drop);
    expect(w.end).toBe(1000);
    expect(w.slice(drop, 1000).equals(bytes.subarray(drop))).toBe(true);
    w.push(Buffer.from('next'));
    expect(w.slice(998, 1004).toString('latin1')).toBe(
      bytes.subarray(998).toString('latin1') + 'next',
    );
  });

  it('moves to an empty window when everything is dropped', () => {
    const w = windowOf(bytes, [100]);
    w.dropBefore(1000);
    expect(w.length).toBe(0);
    expect(w.start).toBe(1000);
    w.push(Buffer.from('abc'));
    expect(w.slice(1000, 1003).toString()).toBe('abc');
  });

  it.each([
    { name: 'before the window', from: 50, to: 200 },
    { name: 'past the end', from: 900, to: 1001 },
    { name: 'reversed', from: 300, to: 200 },
  ])('refuses a range it does not hold: $name', ({ from, to }) => {
    const w = windowOf(bytes, [500]);
    w.dropBefore(100);
    expect(() => w.slice(from, to)).toThrow(/does not hold/);
    expect(() => w.pieces(from, to)).toThrow(/does not hold/);
  });

  /** Three handed-over chunks of 100 bytes (own memory each) and one that is not handed over. */
  function handedWindow(): { w: WindowParts; chunks: Buffer[]; plain: Buffer } {
    const w = new WindowParts();
    const own = (from: number): Buffer => {
      const b = Buffer.from(new ArrayBuffer(100));
      bytes.copy(b, 0, from, from + 100);
      return b;
    };
    const chunks = [0, 1, 2].map((i) => own(i * 100));
    const plain = own(300);
    for (const c of chunks) {
      handOver(c);
      w.push(c);
    }
    // Never handed over: the window must leave it alone.
    w.push(plain);
    return { w, chunks, plain };
  }

  it.each([
    { name: 'nothing lent: dropped chunks are freed at once', lend: [], drop: 250, freed: [0, 1] },
    {
      name: 'a lent piece keeps its chunk until released',
      lend: [[150, 210]],
      drop: 250,
      freed: [0],
    },
    { name: 'a partly dropped chunk stays', lend: [], drop: 150, freed: [0] },
  ])('frees handed-over chunks: $name', ({ lend, drop, freed }) => {
    const { w, chunks, plain } = handedWindow();
    const lent = lend.map(([from = 0, to = 0]) => w.lend(from, to));
    w.dropBefore(drop);
    expect(chunks.map((c, i) => (c.length === 0 ? i : -1)).filter((i) => i >= 0)).toEqual(freed);
    for (const l of lent) l.release();
    // Released: every chunk wholly before the drop point is gone now; the rest is intact.
    const whole = chunks.filter((_c, i) => (i + 1) * 100 <= drop);
    expect(whole.every((c) => c.length === 0)).toBe(true);
    expect(w.slice(Math.max(drop, 200), 400).equals(bytes.subarray(Math.max(drop, 200), 400))).toBe(
      true,
    );
    expect(plain.length).toBe(100);
  });

  it('frees a chunk only when its last lent piece is released, once', () => {
    const { w, chunks } = handedWindow();
    const a = w.lend(0, 150);
    const b = w.lend(50, 100);
    w.dropBefore(300);
    expect(chunks[0]?.length).toBe(100);
    a.release();
    a.release();
    expect(chunks[0]?.length).toBe(100);
    expect(chunks[1]?.length).toBe(0);
    b.release();
    expect(chunks[0]?.length).toBe(0);
    expect(isHandedOver(chunks[2]?.buffer ?? new ArrayBuffer(0))).toBe(false);
  });
});
