// SPDX-License-Identifier: Apache-2.0
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { Coalescer } from './coalesce.js';

describe('Coalescer', () => {
  it.each([
    { what: 'a fast consumer', slow: false },
    { what: 'a slow consumer', slow: true },
  ])('passes every byte in order to $what', async ({ slow }) => {
    const chunks = Array.from({ length: 200 }, (_, i) => Buffer.alloc(16 * 1024, i % 256));
    const seen: Buffer[] = [];
    await pipeline(
      Readable.from(chunks),
      new Coalescer(),
      new Writable({
        highWaterMark: 16 * 1024,
        write(chunk: Buffer, _enc, cb): void {
          seen.push(chunk);
          if (slow) setTimeout(cb, 1);
          else cb();
        },
      }),
    );
    expect(Buffer.concat(seen).equals(Buffer.concat(chunks))).toBe(true);
    // Behind a slow consumer the queued chunks arrive merged: fewer, larger writes.
    if (slow) expect(seen.length).toBeLessThan(chunks.length / 4);
  });
});
