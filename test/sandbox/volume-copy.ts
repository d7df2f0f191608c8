// SPDX-License-Identifier: Apache-2.0
/**
 * Point-in-time copies of hostPath volumes, as the sandbox's CSI-like driver makes them for
 * snapshots and for claims provisioned from a source: `cp --reflink=auto --sparse=always` shares
 * extents where the filesystem can (btrfs, xfs), else writes a sparse copy. A directory
 * (Filesystem volume) is copied whole, a file (Block volume) as a file.
 */
import { execFile } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, statSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Copies the volume at `from` to `to` (which must not exist). */
export async function copyVolume(from: string, to: string): Promise<void> {
  await run('cp', ['-a', '--reflink=auto', '--sparse=always', '--', from, to]);
}

/** Grows a Block volume's backing file to `bytes`; a Filesystem volume needs nothing. */
export function growVolume(path: string, bytes: number): void {
  const st = statSync(path);
  if (!st.isFile() || st.size >= bytes) return;
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
}

/** A scalar field's text (a quantity may be a number); '' for anything else. */
export function textOf(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '';
}
