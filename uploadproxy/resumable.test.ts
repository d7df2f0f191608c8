// SPDX-License-Identifier: Apache-2.0
import { mkdtemp, rm, stat } from 'node:fs/promises';
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

  it('a failed journal fails its reader; dispose deletes the file', async () => {
    const reader = journal.reader();
    const read = collect(reader);
    journal.fail(new Error('gone'));
    await expect(read).rejects.toThrow('gone');
    const file = journal.path;
    await journal.dispose();
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
