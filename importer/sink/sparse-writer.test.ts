// SPDX-License-Identifier: Apache-2.0
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handOver } from '../../common/handed-over.js';
import { POOL_BLOCK_BYTES, handOverBlock, takeBlock } from './block-pool.js';
import { SparseWriter } from './sparse-writer.js';
import { ZERO_BLOCK } from './zero-block.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cdi-sparse-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Fills a block: 4 KiB sub-blocks of a per-block pattern, every third one left zero. */
function fill(block: Buffer, seed: number): Buffer {
  for (let off = 0, i = 0; off < block.length; off += 4096, i++) {
    if (i % 3 === 0) block.fill(0, off, off + 4096);
    else createHash('sha256').update(`${seed}:${i}`).digest().copy(block, off);
    if (i % 3 !== 0) block.fill((seed % 251) + 1, off + 32, off + 4096);
  }
  return block;
}

async function writeAll(
  kind: 'file' | 'block',
  chunks: () => Iterable<Buffer>,
): Promise<{ path: string; writer: SparseWriter }> {
  const path = join(dir, 'out.img');
  const fh = await open(path, 'w+');
  const writer = new SparseWriter({ fd: fh.fd, targetName: path, kind });
  try {
    await pipeline(Readable.from(chunks()), writer);
    // The writer never writes trailing zeros; the target sizes the file (RawTarget.finish).
    await fh.truncate(writer.position);
  } finally {
    await fh.close();
  }
  return { path, writer };
}

describe('SparseWriter', () => {
  it('frees handed-over chunks once written, and only those', async () => {
    const handed = Array.from({ length: 12 }, (_, i) =>
      fill(Buffer.from(new ArrayBuffer(1 << 20)), i),
    );
    const kept = fill(Buffer.from(new ArrayBuffer(1 << 20)), 99);
    const expected = Buffer.concat([...handed, kept]);
    for (const c of handed) handOver(c);
    const { path } = await writeAll('file', () => [...handed, kept]);
    expect((await readFile(path)).equals(expected)).toBe(true);
    expect(handed.every((c) => c.length === 0)).toBe(true);
    expect(kept.length).toBe(1 << 20);
  });

  it('writes recycled pool blocks correctly: a block is reused only after its bytes are on disk', async () => {
    const count = 48; // several 8 MiB batches, with chunks split across them by zero runs
    const expected = Buffer.concat(
      Array.from({ length: count }, (_, i) => fill(Buffer.alloc(POOL_BLOCK_BYTES), i)),
    );
    const { path, writer } = await writeAll('file', function* () {
      for (let i = 0; i < count; i++) {
        // As the decoders do: the block is handed over and comes back to the pool once written.
        const block = fill(takeBlock(), i);
        handOverBlock(block);
        yield block;
      }
    });
    expect(writer.position).toBe(expected.length);
    const got = await readFile(path);
    expect(got.subarray(0, writer.position).equals(expected)).toBe(true);
  });

  it.each([
    {
      what: 'file targets leave zero runs as holes',
      kind: 'file' as const,
      maxAllocated: 2 * POOL_BLOCK_BYTES,
    },
    { what: 'block targets write zero runs', kind: 'block' as const, maxAllocated: Infinity },
  ])('$what', async ({ kind, maxAllocated }) => {
    const data = fill(Buffer.alloc(POOL_BLOCK_BYTES), 7);
    const { path, writer } = await writeAll(kind, function* () {
      yield ZERO_BLOCK.subarray(0, POOL_BLOCK_BYTES);
      yield data;
      yield Buffer.alloc(POOL_BLOCK_BYTES);
    });
    expect(writer.position).toBe(3 * POOL_BLOCK_BYTES);
    const st = await stat(path);
    expect(st.blocks * 512).toBeLessThanOrEqual(maxAllocated);
    const got = await readFile(path);
    expect(got.subarray(POOL_BLOCK_BYTES, 2 * POOL_BLOCK_BYTES).equals(data)).toBe(true);
    if (kind === 'block') expect(st.size).toBe(3 * POOL_BLOCK_BYTES);
  });

  it('refuses to grow past its limit with CDI_SIZE_VALIDATION', async () => {
    const path = join(dir, 'limited.img');
    const fh = await open(path, 'w+');
    try {
      const writer = new SparseWriter({
        fd: fh.fd,
        targetName: path,
        kind: 'file',
        limit: POOL_BLOCK_BYTES,
      });
      const err = await pipeline(
        Readable.from([Buffer.alloc(POOL_BLOCK_BYTES, 1), Buffer.alloc(1, 1)]),
        writer,
      ).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'CDI_SIZE_VALIDATION' });
    } finally {
      await fh.close();
    }
  });
});
