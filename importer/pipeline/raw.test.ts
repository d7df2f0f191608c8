// SPDX-License-Identifier: Apache-2.0
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SECTOR_BYTES, SectorPad } from './raw.js';

async function padded(lengths: readonly number[]): Promise<Buffer> {
  const chunks = lengths.map((n, i) => Buffer.alloc(n, i + 1));
  const out: Buffer[] = [];
  for await (const c of Readable.from(chunks).pipe(new SectorPad())) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe('SectorPad', () => {
  it.each([
    { lengths: [], total: 0 },
    { lengths: [512], total: 512 },
    { lengths: [1], total: 512 },
    { lengths: [300, 300], total: 1024 },
    { lengths: [1024 * 1024, 100], total: 1024 * 1024 + 512 },
    { lengths: [511, 1], total: 512 },
  ])('$lengths → $total bytes, the input first, then zeros', async ({ lengths, total }) => {
    const out = await padded(lengths);
    expect(out.length).toBe(total);
    expect(out.length % SECTOR_BYTES).toBe(0);
    const inputLength = lengths.reduce((a, b) => a + b, 0);
    expect(out.subarray(inputLength).every((b) => b === 0)).toBe(true);
    let at = 0;
    lengths.forEach((n, i) => {
      expect(out.subarray(at, at + n).every((b) => b === i + 1)).toBe(true);
      at += n;
    });
  });
});
