// SPDX-License-Identifier: Apache-2.0
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { ZstdDecoder } from './zstd-decoder.js';

function chunks(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < buf.length; off += size) out.push(buf.subarray(off, off + size));
  return out;
}

async function decode(
  input: Buffer[],
  slowSink = false,
): Promise<{ out: Buffer; maxBuffered: number }> {
  const parts: Buffer[] = [];
  const decoder = new ZstdDecoder();
  let maxBuffered = 0;
  await pipeline(
    Readable.from(input),
    decoder,
    new Writable({
      highWaterMark: 1 << 20,
      write: (c: Buffer, _e, cb) => {
        parts.push(Buffer.from(c.subarray(0, 16)));
        parts.push(c.subarray(16));
        maxBuffered = Math.max(maxBuffered, decoder.readableLength);
        if (slowSink) void tick().then(() => cb());
        else cb();
      },
    }),
  );
  return { out: Buffer.concat(parts), maxBuffered };
}

describe('ZstdDecoder', () => {
  const text = Buffer.from('a VM disk block '.repeat(40_000));

  it.each([
    { what: 'one input chunk', size: 1 << 30 },
    { what: 'byte-sized input chunks', size: 1 },
    { what: '1000-byte input chunks', size: 1000 },
  ])('decodes $what', async ({ size }) => {
    const frame = compress(text);
    const { out } = await decode(chunks(frame, size));
    expect(out.equals(text)).toBe(true);
  });

  it('decodes concatenated frames as one stream, as the zstd tool does', async () => {
    const { out } = await decode([compress(text), compress(text)]);
    expect(out.equals(Buffer.concat([text, text]))).toBe(true);
  });

  it('keeps memory bounded behind a slow sink even at a huge expansion ratio', async () => {
    const zeros = Buffer.alloc(256 << 20);
    const frame = compress(zeros);
    expect(frame.length).toBeLessThan(64 << 10);
    const { out, maxBuffered } = await decode([frame], true);
    expect(out.length).toBe(zeros.length);
    // At most the readable high-water mark plus one block, not the 256 MiB the frame expands to.
    expect(maxBuffered).toBeLessThanOrEqual(3 << 20);
  });

  it.each([
    {
      what: 'a truncated frame',
      input: () => [compress(randomBytes(100_000)).subarray(0, 50_000)],
      message: /truncated/,
    },
    {
      what: 'garbage after the magic',
      input: () => [Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64, 0xff)])],
      message: /corrupt/,
    },
  ])('fails $what with CDI_DECOMPRESS_FAILED', async ({ input, message }) => {
    const err = await decode(input()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CDI_DECOMPRESS_FAILED' });
    expect(String(err)).toMatch(message);
  });
});
