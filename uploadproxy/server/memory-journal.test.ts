// SPDX-License-Identifier: Apache-2.0
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { MemoryJournal } from './memory-journal.js';

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('MemoryJournal', () => {
  it('holds at most about its limit ahead of the reader (backpressure), then delivers in order', async () => {
    const journal = new MemoryJournal({ limit: 256 * 1024 });
    const chunk = (i: number): Buffer => Buffer.alloc(64 * 1024, i % 256);
    const all = Array.from({ length: 64 }, (_, i) => chunk(i));
    journal.setTotal(all.length * 64 * 1024);
    const appended = pipeline(Readable.from(all), journal.appender());
    // Nobody reads yet: the writer stalls once the queue passes the limit.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(journal.queued).toBeLessThanOrEqual(256 * 1024 + 64 * 1024);
    expect(journal.received).toBeLessThan(all.length * 64 * 1024);
    const read = collect(journal.reader());
    await appended;
    journal.markComplete();
    expect((await read).equals(Buffer.concat(all))).toBe(true);
  });

  it('a dropped append keeps what arrived; a resume appends the rest', async () => {
    const journal = new MemoryJournal();
    journal.setTotal(6);
    const read = collect(journal.reader());
    const broken = new Readable({ read: () => undefined });
    const first = pipeline(broken, journal.appender());
    broken.push(Buffer.from('abc'));
    await new Promise<void>((resolve) => setImmediate(resolve));
    broken.destroy(new Error('connection reset'));
    await expect(first).rejects.toThrow('connection reset');
    expect(journal.durable).toBe(3);
    await pipeline(Readable.from([Buffer.from('def')]), journal.appender());
    journal.markComplete();
    expect((await read).toString()).toBe('abcdef');
  });

  it('fail releases a stalled writer and fails the reader', async () => {
    const journal = new MemoryJournal({ limit: 1 });
    const appended = pipeline(
      Readable.from([Buffer.from('xx'), Buffer.from('yy')]),
      journal.appender(),
    );
    journal.fail(new Error('discarded'));
    await expect(appended).rejects.toThrow('discarded');
    await expect(collect(journal.reader())).rejects.toThrow('discarded');
  });

  it.each([
    { what: 'the end mark ends it', end: (j: MemoryJournal) => j.markComplete(), fails: false },
    {
      what: 'a failure fails it',
      end: (j: MemoryJournal) => j.fail(new Error('gone')),
      fails: true,
    },
  ])('a reader waiting for bytes gets them as they come; $what', async ({ end, fails }) => {
    const journal = new MemoryJournal();
    journal.setTotal(4);
    const read = collect(journal.reader());
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (const part of ['ab', 'cd'])
      await pipeline(Readable.from([Buffer.from(part)]), journal.appender());
    expect(journal.queued).toBe(0);
    end(journal);
    if (fails) await expect(read).rejects.toThrow('gone');
    else expect((await read).toString()).toBe('abcd');
  });

  it('refuses bytes beyond the announced total', async () => {
    const journal = new MemoryJournal();
    journal.setTotal(2);
    await expect(
      pipeline(Readable.from([Buffer.from('abc')]), journal.appender()),
    ).rejects.toMatchObject({
      code: 'CDI_CONTENT_LENGTH_MISMATCH',
    });
  });
});
