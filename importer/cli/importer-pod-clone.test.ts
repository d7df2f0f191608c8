// SPDX-License-Identifier: Apache-2.0
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImporterEnv, SourceKinds } from '../../common/contract.js';
import { silentLogger } from '../../common/logger.js';
import type { CommandContext } from '../../common/cli/context.js';
import { importerPodCommand } from './importer-pod.js';

const MIB = 1024 * 1024;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cdi-clone-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * A raw disk of `size` bytes with data at a few places, whose first bytes are qcow2's magic: a
 * clone must copy it as it is, not "convert" it.
 */
async function rawDiskLookingLikeQcow2(path: string, size: number): Promise<Buffer> {
  const disk = Buffer.alloc(size);
  Buffer.from('QFI\xfb\x00\x00\x00\x03', 'latin1').copy(disk, 0);
  for (let i = 8; i < 64 * 1024; i++) disk[i] = (i * 31) & 0xff;
  for (let i = 0; i < 4096; i++) disk[size - 8192 + i] = (i * 7 + 1) & 0xff;
  await writeFile(path, disk);
  return disk;
}

function context(env: Record<string, string>): CommandContext {
  return {
    env,
    stdout: process.stdout,
    stderr: process.stderr,
    logger: silentLogger,
    signal: new AbortController().signal,
    tmpDir: dir,
    proxy: {},
  };
}

function cloneEnv(endpoint: string, extra: Record<string, string>): Record<string, string> {
  return {
    [ImporterEnv.Source]: SourceKinds.Pvc,
    [ImporterEnv.Endpoint]: endpoint,
    [ImporterEnv.FilesystemOverhead]: '0',
    [ImporterEnv.MetricsAddress]: 'off',
    [ImporterEnv.DataDir]: join(dir, 'data'),
    [ImporterEnv.BlockDevice]: join(dir, 'no-such-device'),
    [ImporterEnv.ScratchDir]: join(dir, 'no-scratch'),
    [ImporterEnv.TerminationLog]: join(dir, 'termination-log'),
    ...extra,
  };
}

async function blockFile(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  await fh.truncate(size);
  await fh.close();
}

describe('cdi importer, IMPORTER_SOURCE=pvc', () => {
  it.each([
    { what: 'filesystem source into a filesystem target', block: false },
    { what: 'source into a block target', block: true },
  ])('$what: copies the bytes as they are', async ({ block }) => {
    await mkdir(join(dir, 'source'));
    const source = join(dir, 'source', 'disk.img');
    const disk = await rawDiskLookingLikeQcow2(source, 4 * MIB);
    const device = join(dir, 'block');
    if (block) await blockFile(device, 6 * MIB);
    const code = await importerPodCommand(
      [],
      context(
        cloneEnv(
          source,
          block ? { [ImporterEnv.BlockDevice]: device } : { [ImporterEnv.ImageSize]: '8Mi' },
        ),
      ),
    );
    const termination = await readFile(join(dir, 'termination-log'), 'utf8');
    expect(code, termination).toBe(0);
    expect(JSON.parse(termination)).toMatchObject({ message: 'Clone Complete' });
    const out = block ? device : join(dir, 'data', 'disk.img');
    const written = await readFile(out);
    // The same bytes, then zeros up to the target's size (resized as an import is).
    expect(written.subarray(0, disk.length).equals(disk)).toBe(true);
    expect(written.subarray(disk.length).every((b) => b === 0)).toBe(true);
    expect(written.length).toBe(block ? 6 * MIB : 8 * MIB);
    if (!block) {
      // Sparse: the zero middle of the disk was never written.
      const st = await stat(out);
      expect(st.blocks * 512).toBeLessThan(2 * MIB);
    }
  });

  it('fails on a target smaller than the source, naming the sizes', async () => {
    await mkdir(join(dir, 'source'));
    const source = join(dir, 'source', 'disk.img');
    await rawDiskLookingLikeQcow2(source, 4 * MIB);
    const device = join(dir, 'block');
    await blockFile(device, 2 * MIB);
    const code = await importerPodCommand(
      [],
      context(cloneEnv(source, { [ImporterEnv.BlockDevice]: device })),
    );
    expect(code).toBe(1);
    expect(await readFile(join(dir, 'termination-log'), 'utf8')).toMatch(
      /exceeds available space 2Mi \(2097152 bytes\)/,
    );
  });

  it('fails while the source image is missing (retried by the pod)', async () => {
    const code = await importerPodCommand(
      [],
      context(cloneEnv(join(dir, 'source', 'disk.img'), { [ImporterEnv.ImageSize]: '8Mi' })),
    );
    expect(code).toBe(1);
    expect(await readFile(join(dir, 'termination-log'), 'utf8')).toMatch(
      /^Unable to connect to pvc data source: cannot read source .*: no such file/,
    );
  });
});
