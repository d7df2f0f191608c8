// SPDX-License-Identifier: Apache-2.0
/**
 * Generates the benchmark's disk: a multi-GiB sparse raw image holding about a gigabyte of data
 * that compresses roughly like a filesystem (half random, half repetitive), spread in extents.
 */
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';

const MIB = 1024 * 1024;
const EXTENT = 8 * MIB;

/** Writes the image; returns the bytes of data written. */
export async function writeBenchImage(
  path: string,
  size: number,
  dataBytes: number,
): Promise<number> {
  const fh = await open(path, 'w');
  const text = Buffer.from(
    'root:x:0:0:root:/root:/bin/bash\nExec=/usr/bin/cloud-init --file /etc/cloud/cloud.cfg\n'.repeat(
      Math.ceil(MIB / 80),
    ),
  ).subarray(0, MIB);
  let written = 0;
  try {
    await fh.truncate(size);
    const extents = Math.max(1, Math.floor(dataBytes / EXTENT));
    const stride = Math.floor(size / extents / MIB) * MIB;
    for (let i = 0; i < extents; i++) {
      const base = i * stride;
      for (let off = 0; off < EXTENT && base + off + MIB <= size; off += MIB) {
        const block = (off / MIB) % 2 === 0 ? randomBytes(MIB) : text;
        await fh.write(block, 0, MIB, base + off);
        written += MIB;
      }
    }
  } finally {
    await fh.close();
  }
  return written;
}
