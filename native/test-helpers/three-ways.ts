// SPDX-License-Identifier: Apache-2.0
/**
 * Runs one image through every converter path the product has for it, for tests that demand
 * one verdict: the random-access converter (local file), the stream converter fed in chunks of
 * random sizes, and the stream converter behind a gzip layer (the image is gzipped, the
 * compressed bytes arrive in random pieces and are inflated on the way, as `cdi import` of a
 * `.gz` does). Each path reports its error code or the SHA-256 of its output.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';

import { CdiError, ErrorCodes, errorCode, errorMessage } from '../../common/errors.js';
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

/** Disks larger than this are not converted (hostile headers claim huge sizes). */
export const MAX_DISK_BYTES = 64 * 1024 * 1024;

/** Converts into a fresh file sized by `prepareTarget`; returns the output's SHA-256. */
async function withTarget(
  out: string,
  maxDisk: number,
  run: (target: TargetOptions) => Promise<unknown>,
): Promise<string> {
  try {
    await writeFile(out, '');
    const fh = await open(out, 'r+');
    try {
      await run({
        target: { fd: fh.fd, kind: 'file' },
        prepareTarget: async (info) => {
          if (info.virtualSize > maxDisk) {
            throw new CdiError(ErrorCodes.SizeValidation, `disk of ${info.virtualSize} bytes`);
          }
          await fh.truncate(info.virtualSize);
        },
      });
    } finally {
      await fh.close();
    }
    return await hashFile(out);
  } finally {
    await rm(out, { force: true });
  }
}

interface TargetOptions {
  readonly target: { readonly fd: number; readonly kind: 'file' };
  readonly prepareTarget: (info: { readonly virtualSize: number }) => Promise<void>;
}

/**
 * Converts `image` three ways, each into a target sized to the disk by `prepareTarget` (disks
 * over `maxDisk` are refused with `CDI_SIZE_VALIDATION`; the target file is sparse). `seed`
 * picks the chunk boundaries.
 */
export async function convertThreeWays(
  format: ConvertibleFormat,
  image: string,
  workDir: string,
  options: { readonly seed: number; readonly maxDisk?: number },
): Promise<Outcome[]> {
  const { seed, maxDisk = MAX_DISK_BYTES } = options;
  const bytes = await readFile(image);
  const rand = seeded(seed);
  const paths: [Path, (t: TargetOptions) => Promise<unknown>][] = [
    ['random access', (t) => convertImageFile(format, image, t)],
    [
      'stream',
      async (t) => {
        const sink = createImageStreamConverter(format, { ...t, spillDir: workDir });
        await pipeline(Readable.from(randomPieces(bytes, rand)), sink);
        return sink.result;
      },
    ],
    [
      'stream behind gzip',
      async (t) => {
        const sink = createImageStreamConverter(format, { ...t, spillDir: workDir });
        const gz = gzipSync(bytes);
        await pipeline(Readable.from(randomPieces(gz, rand, 64 * 1024)), createGunzip(), sink);
        return sink.result;
      },
    ],
  ];
  const outcomes: Outcome[] = [];
  for (const [path, run] of paths) {
    try {
      // The output lives in the work directory, never next to the image (a source tree).
      const out = join(workDir, `${basename(image)}.${seed}.out`);
      const sha256 = await withTarget(out, maxDisk, run);
      outcomes.push({ path, sha256 });
    } catch (err) {
      outcomes.push({ path, code: errorCode(err) ?? 'none', message: errorMessage(err) });
    }
  }
  return outcomes;
}

/**
 * The format an image's magic names, or undefined (a fixed VHD streams as raw and is left out).
 */
export function sniffFormat(b: Buffer): ConvertibleFormat | undefined {
  const at = (offset: number, text: string): boolean =>
    b.length >= offset + text.length && b.toString('latin1', offset, offset + text.length) === text;
  if (at(0, 'QFI\xfb')) return 'qcow2';
  if (at(0, 'vhdxfile')) return 'vhdx';
  // A footer copy at the start naming a fixed disk: streams as raw, like a fixed VHD.
  if (at(0, 'conectix')) return b.length >= 64 && b.readUInt32BE(60) === 2 ? undefined : 'vhd';
  if (at(0, 'KDMV')) return 'vmdk';
  if (b.length >= 68 && b.readUInt32LE(64) === 0xbeda107f) return 'vdi';
  return undefined;
}

/** True when the outcomes are one verdict: all refused, or all the same disk. */
export function oneVerdict(outcomes: readonly Outcome[]): boolean {
  const disks = new Set(outcomes.map((o) => ('sha256' in o ? o.sha256 : 'refused')));
  return disks.size === 1;
}
