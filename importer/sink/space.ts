// SPDX-License-Identifier: Apache-2.0
import { execFile } from 'node:child_process';
import { open, stat, statfs } from 'node:fs/promises';
import { promisify } from 'node:util';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { formatBytes } from '../../common/quantity.js';

const MIB = 1024 * 1024;
const execFileAsync = promisify(execFile);

/** Inputs of {@link usableSpace}. */
export interface SpaceInputs {
  /** The claim's requested size (IMPORTER_IMAGE_SIZE), when known. */
  readonly requested: number | undefined;
  /** Free bytes where the image goes (statfs for a filesystem, device size for a block target). */
  readonly available: number;
  /** FILESYSTEM_OVERHEAD, 0 for block targets. */
  readonly overhead: number;
}

/**
 * Space the image may use, CDI's arithmetic (`pkg/util` GetAvailableSpace + overhead):
 * min(requested, available) divided by (1 + overhead), rounded down to 1 MiB. With no overhead
 * the value is not rounded, so a block device or a CLI target uses every byte.
 */
export function usableSpace(inputs: SpaceInputs): number {
  const base =
    inputs.requested === undefined
      ? inputs.available
      : Math.min(inputs.requested, inputs.available);
  if (inputs.overhead <= 0) return base;
  const reduced = Math.ceil(base / (1 + inputs.overhead));
  return Math.floor(reduced / MIB) * MIB;
}

/** The message users see when an image does not fit, naming both sizes. */
export function sizeExceededError(
  imageSize: number,
  usable: number,
  what = 'image virtual size',
): CdiError {
  return new CdiError(
    ErrorCodes.SizeValidation,
    `${what} ${formatBytes(imageSize)} (${imageSize} bytes) exceeds available space ${formatBytes(usable)} (${usable} bytes); a larger PVC is required`,
    { details: { imageSize, usable } },
  );
}

/** Free bytes for an unprivileged writer in the filesystem holding `dir`. */
export async function freeSpace(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return Number(fs.bavail) * Number(fs.bsize);
}

/**
 * Size of a block device (or of a plain file standing in for one, as in the sandbox). Devices
 * report size 0 to stat, so their size comes from `blockdev --getsize64`, as CDI does.
 */
export async function blockTargetSize(path: string): Promise<number> {
  const st = await stat(path);
  if (!st.isBlockDevice()) return st.size;
  try {
    const { stdout } = await execFileAsync('blockdev', ['--getsize64', path]);
    return Number.parseInt(stdout.trim(), 10);
  } catch {
    // Without blockdev, seek to the end: reading at a huge offset fails, so probe by binary search.
    return probeDeviceSize(path);
  }
}

async function probeDeviceSize(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const one = Buffer.alloc(1);
    let low = 0;
    let high = 1;
    while ((await fh.read(one, 0, 1, high)).bytesRead === 1) {
      low = high;
      high *= 2;
    }
    while (high - low > 1) {
      const mid = Math.floor((low + high) / 2);
      if ((await fh.read(one, 0, 1, mid)).bytesRead === 1) low = mid;
      else high = mid;
    }
    return high;
  } finally {
    await fh.close();
  }
}
