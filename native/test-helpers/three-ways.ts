// SPDX-License-Identifier: Apache-2.0
/**
 * Runs one image through every converter path the product has for it, for tests that demand
 * one verdict: the random-access converter (local file), the stream converter fed in chunks of
 * random sizes, and the stream converter behind a gzip layer (the image is gzipped, the
 * compressed bytes arrive in random pieces and are inflated on the way, as `cdi import` of a
 * `.gz` does). Each path reports its error code or the SHA-256 of its output.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';

import { errorCode, errorMessage } from '../../common/errors.js';
import { convertImageFile, createImageStreamConverter, type ConvertibleFormat } from '../index.js';

/** One path's outcome. */
export type Outcome =
  | { readonly path: Path; readonly sha256: string }
  | { readonly path: Path; readonly code: string; readonly message: string };
export type Path = 'random access' | 'stream' | 'stream behind gzip';

/** A small seeded generator (mulberry32), so a failing split can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cuts `b` into pieces of 1 byte to `max` bytes, sizes drawn from `rand`. */
export function randomPieces(b: Buffer, rand: () => number, max = 256 * 1024): Buffer[] {
  const out: Buffer[] = [];
  for (let pos = 0; pos < b.length;) {
    // Mostly large pieces, some tiny ones: window and carry edges both get hit.
    const n = rand() < 0.2 ? 1 + Math.floor(rand() * 600) : 1 + Math.floor(rand() * max);
    out.push(b.subarray(pos, Math.min(b.length, pos + n)));
    pos += n;
  }
  return out;
}

async function hashFile(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

async function withTarget(
  out: string,
  size: number,
  run: (fd: number) => Promise<unknown>,
): Promise<string> {
  await writeFile(out, '');
  await truncate(out, size);
  const fh = await open(out, 'r+');
  try {
    await run(fh.fd);
  } finally {
    await fh.close();
  }
  const sha = await hashFile(out);
  await rm(out, { force: true });
  return sha;
}

/**
 * Converts `image` three ways into targets of `virtualSize` bytes (pre-sized, so a path that
 * skips trailing zeros still hashes alike). `seed` picks the chunk boundaries.
 */
export async function convertThreeWays(
  format: ConvertibleFormat,
  image: string,
  virtualSize: number,
  workDir: string,
  seed: number,
): Promise<Outcome[]> {
  const bytes = await readFile(image);
  const rand = seeded(seed);
  const paths: [Path, (fd: number) => Promise<unknown>][] = [
    ['random access', (fd) => convertImageFile(format, image, { target: { fd, kind: 'file' } })],
    [
      'stream',
      async (fd) => {
        const sink = createImageStreamConverter(format, {
          target: { fd, kind: 'file' },
          spillDir: workDir,
        });
        await pipeline(Readable.from(randomPieces(bytes, rand)), sink);
        return sink.result;
      },
    ],
    [
      'stream behind gzip',
      async (fd) => {
        const sink = createImageStreamConverter(format, {
          target: { fd, kind: 'file' },
          spillDir: workDir,
        });
        const gz = gzipSync(bytes);
        await pipeline(Readable.from(randomPieces(gz, rand, 64 * 1024)), createGunzip(), sink);
        return sink.result;
      },
    ],
  ];
  const outcomes: Outcome[] = [];
  for (const [path, run] of paths) {
    try {
      const sha256 = await withTarget(`${image}.${seed}.out`, virtualSize, run);
      outcomes.push({ path, sha256 });
    } catch (err) {
      outcomes.push({ path, code: errorCode(err) ?? 'none', message: errorMessage(err) });
    }
  }
  return outcomes;
}
