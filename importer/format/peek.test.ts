// SPDX-License-Identifier: Apache-2.0
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { peekHead } from './peek.js';

describe('peekHead', () => {
  it.each([
    { what: 'one big chunk', chunks: ['abcdefghij'], peek: 4, head: 'abcd' },
    { what: 'many small chunks', chunks: ['a', 'bc', 'def', 'ghij'], peek: 5, head: 'abcde' },
    { what: 'stream shorter than the peek', chunks: ['abc'], peek: 10, head: 'abc' },
    { what: 'empty stream', chunks: [], peek: 4, head: '' },
  ])('$what: returns the head and leaves the stream whole', async ({ chunks, peek, head }) => {
    const stream = Readable.from(
      chunks.map((c) => Buffer.from(c)),
      { objectMode: false },
    );
    const got = await peekHead(stream, peek);
    expect(got.head.toString()).toBe(head);
    expect(await text(got.stream)).toBe(chunks.join(''));
  });

  it('rejects when the stream fails before the head arrives', async () => {
    const stream = new PassThrough();
    const pending = peekHead(stream, 8);
    stream.write('abc');
    stream.destroy(new Error('connection reset'));
    await expect(pending).rejects.toThrow('connection reset');
  });
});
