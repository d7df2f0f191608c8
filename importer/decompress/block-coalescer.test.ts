// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { ZERO_BLOCK } from '../sink/zero-block.js';
import { BlockCoalescer } from './block-coalescer.js';

const KiB = 1024;

function run(pieces: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  const c = new BlockCoalescer((b) => (out.push(Buffer.from(b)), true));
  for (const p of pieces) c.add(p);
  c.flush();
  return out;
}

describe('BlockCoalescer', () => {
  it.each([
    { what: 'data only', pieces: [Buffer.alloc(64 * KiB, 1), Buffer.alloc(64 * KiB, 2)] },
    {
      what: 'zeros between data',
      pieces: [Buffer.alloc(64 * KiB, 1), Buffer.alloc(3 * 1024 * KiB), Buffer.alloc(10, 2)],
    },
    {
      what: 'data crossing a 1 MiB block',
      pieces: Array.from({ length: 20 }, (_, i) => Buffer.alloc(64 * KiB, i + 1)),
    },
    { what: 'nothing', pieces: [] },
  ])('keeps the bytes and their order: $what', ({ pieces }) => {
    const out = run(pieces);
    expect(Buffer.concat(out).equals(Buffer.concat(pieces))).toBe(true);
    expect(out.every((b) => b.length <= 1024 * KiB)).toBe(true);
  });

  it('hands zero runs out as views of the shared zero block, never copies', () => {
    const seen: Buffer[] = [];
    const c = new BlockCoalescer((b) => (seen.push(b), true));
    c.add(Buffer.alloc(2048 * KiB));
    c.flush();
    expect(seen).toHaveLength(2);
    expect(seen.every((b) => b.buffer === ZERO_BLOCK.buffer)).toBe(true);
  });

  it('reports backpressure from the consumer', () => {
    const c = new BlockCoalescer(() => false);
    expect(c.add(Buffer.alloc(64 * KiB, 1))).toBe(true); // held, nothing emitted yet
    expect(c.add(Buffer.alloc(1024 * KiB, 1))).toBe(false);
  });
});
