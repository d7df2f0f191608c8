// SPDX-License-Identifier: Apache-2.0
import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRawImage, makeTempDir, qemuImg } from '../../test/fixtures/index.js';
import {
  EXTENT_HEADER_BYTES,
  ExtentDecoder,
  MAX_EXTENT_BYTES,
  encodeDataHeader,
  encodeEnd,
  encodeExtents,
  encodeHeader,
  type ExtentSink,
} from './extent-stream.js';

const MiB = 1 << 20;
let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await makeTempDir('cdi-extents-'));
});
afterAll(async () => cleanup());

/** A sink writing into a file handle, recording what it was told. */
function fileSink(handle: FileHandle): ExtentSink & { holes: [number, number][] } {
  const holes: [number, number][] = [];
  return {
    holes,
    begin: (size) => handle.truncate(size),
    write: async (offset, data) => {
      await handle.write(data, 0, data.length, offset);
    },
    hole: (offset, length) => {
      holes.push([offset, length]);
      return Promise.resolve();
    },
  };
}

async function encodeFile(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const parts: Buffer[] = [];
    const size = (await stat(path)).size;
    for await (const b of encodeExtents({ handle, size, signal: new AbortController().signal }))
      parts.push(b);
    return Buffer.concat(parts);
  } finally {
    await handle.close();
  }
}

async function decodeInto(stream: Buffer, path: string, chunk: number) {
  const handle = await open(path, 'w+');
  try {
    const sink = fileSink(handle);
    const decoder = new ExtentDecoder(sink);
    for (let at = 0; at < stream.length; at += chunk)
      await decoder.push(stream.subarray(at, at + chunk));
    return { ...decoder.finish(), holes: sink.holes };
  } finally {
    await handle.close();
  }
}

describe('extent stream', () => {
  it.each([
    { what: 'data at both ends and a long run over a record', chunk: 65536 },
    { what: 'the same, fed one odd-sized chunk at a time', chunk: 7777 },
  ])(
    'round-trips a sparse image ($what), sending only its data',
    async ({ chunk }) => {
      const src = join(dir, `src-${chunk}.raw`);
      await makeRawImage(src, 64 * MiB, [
        { offset: 0, length: 64 * 1024, seed: 1 },
        { offset: 8 * MiB, length: MAX_EXTENT_BYTES + MiB, seed: 2 },
        { offset: 63 * MiB, length: MiB, seed: 3 },
      ]);
      const stream = await encodeFile(src);
      // Only data travels: a little over the 6.06 MiB written, far from the 64 MiB image.
      expect(stream.length).toBeLessThan(7 * MiB);
      expect(stream.length).toBeGreaterThan(6 * MiB);
      const dest = join(dir, `dest-${chunk}.raw`);
      const decoded = await decodeInto(stream, dest, chunk);
      expect(decoded.size).toBe(64 * MiB);
      expect(decoded.holes.length).toBeGreaterThanOrEqual(2);
      // qemu-img is the oracle: identical content.
      await qemuImg('compare', '-f', 'raw', '-F', 'raw', src, dest);
    },
    // Generating and comparing the image takes a few seconds on a loaded 2-core machine.
    60_000,
  );

  it('sends an image without data as header and end only', async () => {
    const src = join(dir, 'empty.raw');
    await makeRawImage(src, 16 * MiB, []);
    const stream = await encodeFile(src);
    expect(stream.length).toBe(EXTENT_HEADER_BYTES + 9);
    const decoded = await decodeInto(stream, join(dir, 'empty-out.raw'), 4096);
    expect(decoded).toMatchObject({ size: 16 * MiB, dataBytes: 0, holes: [[0, 16 * MiB]] });
  });

  const data = (offset: number, bytes: Buffer): Buffer =>
    Buffer.concat([encodeDataHeader(offset, bytes.length), bytes]);
  const four = Buffer.from('abcd');
  it.each([
    {
      what: 'another format',
      stream: Buffer.from('QFI\xfb\0\0\0\x03xxxxxxxx', 'latin1'),
      error: /not an extent stream/,
    },
    {
      what: 'a record past the size',
      stream: Buffer.concat([encodeHeader(8), data(6, four)]),
      error: /ends past the image size 8/,
    },
    {
      what: 'records out of order',
      stream: Buffer.concat([encodeHeader(64), data(32, four), data(0, four)]),
      error: /out of order/,
    },
    {
      what: 'an empty record',
      stream: Buffer.concat([encodeHeader(64), encodeDataHeader(0, 0)]),
      error: /not within 1\.\./,
    },
    {
      what: 'a wrong data count',
      stream: Buffer.concat([encodeHeader(64), data(0, four), encodeEnd(5)]),
      error: /counts 5 data bytes, 4 arrived/,
    },
    {
      what: 'bytes after the end',
      stream: Buffer.concat([encodeHeader(64), encodeEnd(0), Buffer.from([1])]),
      error: /after the end record/,
    },
    {
      what: 'an unknown record',
      stream: Buffer.concat([encodeHeader(64), Buffer.from([7, 0, 0, 0, 0, 0, 0, 0, 0])]),
      error: /unknown record type 7/,
    },
    {
      what: 'a cut stream',
      stream: Buffer.concat([encodeHeader(64), data(0, four)]),
      error: /ended at image offset 4 without its end record/,
    },
    { what: 'nothing at all', stream: Buffer.alloc(0), error: /ended before its header/ },
  ])('refuses $what with CDI_CLONE_STREAM_INVALID', async ({ stream, error }) => {
    const out = join(dir, 'bad.raw');
    const err = await decodeInto(stream, out, 5).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'CDI_CLONE_STREAM_INVALID' });
    expect((err as Error).message).toMatch(error);
  });
});
