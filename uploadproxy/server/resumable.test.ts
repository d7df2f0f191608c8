// SPDX-License-Identifier: Apache-2.0
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UploadJournal, parseContentRange } from './resumable.js';

describe('parseContentRange', () => {
  it.each([
    { what: 'a full range', text: 'bytes 0-9/10', out: { start: 0, end: 9, total: 10 } },
    {
      what: 'a middle chunk',
      text: 'bytes 100-199/1000',
      out: { start: 100, end: 199, total: 1000 },
    },
    { what: 'an unknown total', text: 'bytes 5-9/*', out: { start: 5, end: 9, total: undefined } },
    { what: 'upper case unit', text: 'Bytes 0-0/1', out: { start: 0, end: 0, total: 1 } },
  ])('parses $what', ({ text, out }) => {
    expect(parseContentRange(text)).toEqual(out);
  });

  it.each([
    { what: 'end before start', text: 'bytes 9-5/10' },
    { what: 'end beyond total', text: 'bytes 0-10/10' },
    { what: 'another unit', text: 'items 0-1/2' },
    { what: 'a query form', text: 'bytes */10' },
    { what: 'garbage', text: 'bytes=0-1' },
  ])('refuses $what with 400', ({ text }) => {
    expect(() => parseContentRange(text)).toThrow(
      expect.objectContaining({ code: 'CDI_INVALID_ARGUMENT', httpStatus: 400 }) as Error,
    );
  });
});

describe('UploadJournal', () => {
  let dir: string;
  let journal: UploadJournal;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cdi-journal-'));
    journal = await UploadJournal.create(dir);
  });
  afterEach(async () => {
    await journal.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const collect = async (r: Readable): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const c of r) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };

  it('the reader tails appended bytes across two appends and ends at completion', async () => {
    const data = Buffer.from('0123456789abcdef'.repeat(100_000));
    journal.setTotal(data.length);
    const read = collect(journal.reader());
    await pipeline(Readable.from([data.subarray(0, 700_000)]), journal.appender());
    await journal.sync();
    expect(journal.durable).toBe(700_000);
    await pipeline(Readable.from([data.subarray(700_000)]), journal.appender());
    journal.markComplete();
    expect((await read).equals(data)).toBe(true);
  });

  it('refuses bytes beyond the announced total', async () => {
    journal.setTotal(4);
    await expect(
      pipeline(Readable.from([Buffer.from('12345')]), journal.appender()),
    ).rejects.toMatchObject({
      code: 'CDI_CONTENT_LENGTH_MISMATCH',
    });
  });

  it.each([
    { what: 'a changed total', first: 10, second: 11 },
    { what: 'a total below what arrived', first: undefined, second: 2 },
  ])('refuses $what', async ({ first, second }) => {
    if (first !== undefined) journal.setTotal(first);
    else await pipeline(Readable.from([Buffer.from('abcd')]), journal.appender());
    expect(() => journal.setTotal(second)).toThrow(/upload length/);
  });

  it('a failed journal fails its reader; dispose deletes every segment', async () => {
    await pipeline(Readable.from([Buffer.from('abc')]), journal.appender());
    expect(await readdir(dir)).toHaveLength(1);
    const read = collect(journal.reader());
    journal.fail(new Error('gone'));
    await expect(read).rejects.toThrow('gone');
    await journal.dispose();
    expect(await readdir(dir)).toEqual([]);
  });

  it('segments: bytes cross segment boundaries intact and passed segments are deleted', async () => {
    await journal.dispose();
    journal = await UploadJournal.create(dir, { segmentSize: 100_000 });
    const data = Buffer.alloc(1_000_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
    journal.setTotal(data.length);
    // Odd-sized chunks so writes straddle boundaries.
    const chunks = Array.from({ length: Math.ceil(data.length / 33_333) }, (_, i) =>
      data.subarray(i * 33_333, (i + 1) * 33_333),
    );
    await pipeline(Readable.from(chunks.slice(0, 15)), journal.appender());
    expect(journal.segmentPaths()).toHaveLength(5);
    const reader = journal.reader();
    const seen: Buffer[] = [];
    let got = 0;
    for await (const c of reader) {
      seen.push(c as Buffer);
      got += (c as Buffer).length;
      if (got === 400_000) {
        // Four segments read: they are gone; the rest arrives later.
        expect(journal.segmentPaths()).toHaveLength(1);
        await pipeline(Readable.from(chunks.slice(15)), journal.appender());
        journal.markComplete();
      }
    }
    expect(Buffer.concat(seen).equals(data)).toBe(true);
    expect(journal.segmentPaths()).toHaveLength(0);
  });
});
