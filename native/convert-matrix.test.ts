// SPDX-License-Identifier: Apache-2.0
// The generated matrix: each image is made with qemu-img/qemu-io, converted from a local file,
// over HTTP with and without Range, and through the stream converter behind gzip/xz/zstd, and
// compared byte for byte with `qemu-img convert -O raw`.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  convertImageFile,
  convertImageRanged,
  createImageStreamConverter,
  type ConvertStats,
  type ConvertTarget,
} from './index.js';
import { httpRangeReader, serveFile } from './test-helpers/http-range-server.js';
import {
  makeImage,
  makeTempDir,
  qemuRaw,
  sameBytes,
  sh,
  type ImageSpec,
} from './test-helpers/qemu-images.js';

const STD = [
  'write -P 0xab 0 1M',
  'write -P 0xcd 2M 300k',
  'write -z 1M 64k',
  'discard 2M 64k',
  'write -P 0xef 4M 1k',
];

interface Row extends ImageSpec {
  /** Set the dirty incompatible bit after creation (v3 only). */
  readonly dirty?: boolean;
}

const ROWS: readonly Row[] = [
  { what: 'v2, 64 KiB clusters', options: 'compat=0.10', size: '6M', io: STD },
  {
    what: 'v3, 512 B clusters',
    options: 'compat=1.1,cluster_size=512',
    size: '3M',
    io: ['write -P 0xab 0 700k', 'write -z 100k 3k', 'discard 200k 1k', 'write -P 1 2999k 1k'],
  },
  { what: 'v3, 4 KiB clusters', options: 'compat=1.1,cluster_size=4096', size: '6M', io: STD },
  { what: 'v3, 2 MiB clusters', options: 'compat=1.1,cluster_size=2M', size: '9M', io: STD },
  { what: 'v3, zlib compressed', options: 'compat=1.1', size: '6M', io: STD, compress: true },
  {
    what: 'v2, zlib compressed, 4 KiB clusters',
    options: 'compat=0.10,cluster_size=4096',
    size: '6M',
    io: STD,
    compress: true,
  },
  {
    what: 'v3, zstd compressed',
    options: 'compat=1.1,compression_type=zstd',
    size: '6M',
    io: STD,
    compress: true,
  },
  {
    what: 'v3, extended L2 (subclusters)',
    options: 'compat=1.1,extended_l2=on',
    size: '6M',
    io: ['write -P 0xab 0 5k', 'write -P 0x12 70k 2k', 'write -z 1k 2k', 'write -P 3 3M 130k'],
  },
  {
    what: 'v3, extended L2, 2 MiB clusters, zero subclusters',
    options: 'compat=1.1,extended_l2=on,cluster_size=2M',
    size: '9M',
    io: ['write -P 0xab 0 300k', 'write -z 64k 64k', 'discard 128k 64k', 'write -P 9 5M 1k'],
  },
  {
    what: 'odd virtual size, data in the first and last cluster',
    options: 'compat=1.1',
    size: '5243392',
    io: ['write -P 0x11 0 512', 'write -P 0x22 5242880 512'],
  },
  {
    what: 'internal snapshot present, active layer differs',
    options: 'compat=1.1',
    size: '6M',
    io: STD,
    ioAfterSnapshot: ['write -P 0x77 0 128k', 'write -P 0x78 3M 64k', 'discard 256k 64k'],
  },
  {
    what: 'zero clusters over data, discarded ranges',
    options: 'compat=1.1,cluster_size=4096',
    size: '4M',
    io: ['write -P 0xab 0 2M', 'write -z 512k 256k', 'discard 1M 128k', 'write -z 3M 64k'],
  },
  { what: 'dirty bit set', options: 'compat=1.1', size: '6M', io: STD, dirty: true },
  {
    what: 'compressed clusters out of host order, mixed with data',
    options: 'compat=1.1',
    size: '4M',
    io: [
      'write -c -P 0x21 64k 64k',
      'write -c -P 0x22 128k 64k',
      'write -P 0x23 1M 1M',
      'write -c -P 0x24 0 64k',
      'write -c -P 0x25 192k 64k',
    ],
  },
];

type Mode = 'local file' | 'http ranges' | 'http without ranges' | 'gzip' | 'xz' | 'zstd';
const MODES: readonly { mode: Mode }[] = [
  { mode: 'local file' },
  { mode: 'http ranges' },
  { mode: 'http without ranges' },
  { mode: 'gzip' },
  { mode: 'xz' },
  { mode: 'zstd' },
];

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTempDir('cdi-native-matrix-');
});
afterAll(async () => {
  await tmp.cleanup();
});

/** Bytes of `path` that are allocated on disk. */
async function allocated(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

/** Feeds a child process's stdout (`prog -dc file`) to `sink`. */
async function decompressInto(prog: string, file: string, sink: Writable): Promise<void> {
  const child = spawn(prog, ['-dc', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${prog} ${code}`))));
  });
  await pipeline(child.stdout, sink);
  await exited;
}

async function convertBy(mode: Mode, image: string, target: ConvertTarget): Promise<ConvertStats> {
  const options = { target, spillDir: tmp.dir };
  if (mode === 'local file') return convertImageFile('qcow2', image, options);
  if (mode === 'http ranges') {
    const server = await serveFile(image, true);
    try {
      return await convertImageRanged('qcow2', await httpRangeReader(server.url), options);
    } finally {
      await server.close();
    }
  }
  const sink = createImageStreamConverter('qcow2', options);
  if (mode === 'http without ranges') {
    const server = await serveFile(image, false);
    try {
      const res = await fetch(server.url);
      await pipeline(Readable.fromWeb(res.body!), sink);
    } finally {
      await server.close();
    }
  } else if (mode === 'gzip') {
    await pipeline(createReadStream(`${image}.gz`), createGunzip(), sink);
  } else {
    await decompressInto(mode, `${image}.${mode === 'xz' ? 'xz' : 'zst'}`, sink);
  }
  return sink.result;
}

describe.each(ROWS.map((row, i) => ({ ...row, i })))('$what', (row) => {
  let image: string;
  let reference: string;
  let virtualSize: number;

  beforeAll(async () => {
    image = await makeImage(tmp.dir, `img${row.i}`, row);
    if (row.dirty === true) {
      const fh = await open(image, 'r+');
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, 79);
      b[0]! |= 1;
      await fh.write(b, 0, 1, 79);
      await fh.close();
    }
    reference = join(tmp.dir, `img${row.i}.ref.raw`);
    await qemuRaw(image, reference);
    virtualSize = (await stat(reference)).size;
    await sh('gzip', ['-k', '-1', image]);
    await sh('xz', ['-k', '-0', '-T1', image]);
    await sh('zstd', ['-q', '-k', image, '-o', `${image}.zst`]);
  });

  it.each(MODES)('converts from $mode to the bytes qemu-img writes, sparsely', async ({ mode }) => {
    const out = join(tmp.dir, `img${row.i}.${mode.replace(/ /g, '-')}.raw`);
    await writeFile(out, '');
    await truncate(out, virtualSize);
    const fh = await open(out, 'r+');
    let stats: ConvertStats;
    try {
      stats = await convertBy(mode, image, { fd: fh.fd, kind: 'file' });
    } finally {
      await fh.close();
    }
    expect(await sameBytes(out, reference)).toBe(true);
    expect(stats.dataBytesWritten + stats.zeroBytes).toBe(virtualSize);
    // Never more allocated than qemu-img's own sparse output (plus one 64 KiB block of slack).
    expect(await allocated(out)).toBeLessThanOrEqual((await allocated(reference)) + 65536);
    // Only snapshot-only clusters (no L2 entry of the active layer) may be spilled.
    if (row.ioAfterSnapshot === undefined) expect(stats.spilledBytes).toBe(0);
  });
});

describe('block targets (old content unknown)', () => {
  it.each([
    { mode: 'local file' as const },
    { mode: 'gzip' as const },
    { mode: 'http ranges' as const },
  ])('zeroes what is not data when converting from $mode', async ({ mode }) => {
    const image = await makeImage(tmp.dir, `block-${mode.replace(/ /g, '-')}`, {
      what: 'block',
      options: 'compat=1.1',
      size: '4M',
      io: ['write -P 0xab 0 100k', 'write -z 1M 64k', 'write -P 0xcd 3M 64k'],
    });
    const reference = `${image}.ref.raw`;
    await qemuRaw(image, reference);
    await sh('gzip', ['-k', '-1', image]);
    const out = `${image}.block`;
    await writeFile(out, Buffer.alloc(4 * 1024 * 1024, 0xff));
    const fh = await open(out, 'r+');
    try {
      await convertBy(mode, image, { fd: fh.fd, kind: 'block' });
    } finally {
      await fh.close();
    }
    expect(await sameBytes(out, reference)).toBe(true);
  });
});
