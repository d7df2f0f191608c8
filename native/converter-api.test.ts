// SPDX-License-Identifier: Apache-2.0
// The wrapper's contract: info like qemu-img info, prepareTarget before writes, progress,
// abort, spill accounting, zeroRange, and the header sniffer.
import { constants as fsConstants, createReadStream } from 'node:fs';
import { open, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CdiError, ErrorCodes } from '../common/errors.js';
import {
  convertImageFile,
  createImageStreamConverter,
  isQcow2Header,
  openFileRangeReader,
  readImageInfo,
  writeAt,
  zeroRange,
  type Qcow2Info,
} from './index.js';
import { makeImage, makeTempDir, qemuRaw, sameBytes, sh } from './test-helpers/qemu-images.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let image: string;
const SIZE = 8 * 1024 * 1024;

beforeAll(async () => {
  tmp = await makeTempDir('cdi-native-api-');
  image = await makeImage(tmp.dir, 'api', {
    what: 'api',
    options: 'compat=1.1',
    size: '8M',
    io: ['write -P 0xab 0 3M', 'write -P 0xcd 6M 1M'],
  });
});
afterAll(async () => {
  await tmp.cleanup();
});

async function freshTarget(
  name: string,
  size = SIZE,
): Promise<{ path: string; fd: number; close: () => Promise<void> }> {
  const path = join(tmp.dir, name);
  await writeFile(path, '');
  await truncate(path, size);
  const fh = await open(path, 'r+');
  return { path, fd: fh.fd, close: () => fh.close() };
}

describe("readImageInfo('qcow2')", () => {
  it.each([
    { what: 'v2, 4 KiB clusters', options: 'compat=0.10,cluster_size=4096' },
    { what: 'v3, zstd, extended L2', options: 'compat=1.1,compression_type=zstd,extended_l2=on' },
  ])('reports what qemu-img info reports for $what', async ({ what, options }) => {
    const path = await makeImage(tmp.dir, what.replace(/\W+/g, '-'), {
      what,
      options,
      size: '3M',
      io: [],
    });
    const q = JSON.parse(await sh('qemu-img', ['info', '--output=json', path])) as {
      'virtual-size': number;
      'cluster-size': number;
      'format-specific': {
        data: { compat: string; 'compression-type': string; 'extended-l2'?: boolean };
      };
    };
    const reader = await openFileRangeReader(path);
    const info: Qcow2Info = await readImageInfo('qcow2', reader);
    await reader.close();
    expect(info).toMatchObject({
      format: 'qcow2',
      version: q['format-specific'].data.compat === '0.10' ? 2 : 3,
      virtualSize: q['virtual-size'],
      clusterSize: q['cluster-size'],
      compressionType: q['format-specific'].data['compression-type'],
      extendedL2: q['format-specific'].data['extended-l2'] ?? false,
      dirty: false,
      encrypted: false,
      snapshotCount: 0,
    });
    expect(info.refusal).toBeUndefined();
  });

  it('refuses input that is not qcow2', async () => {
    const path = join(tmp.dir, 'raw.img');
    await writeFile(path, Buffer.alloc(4096, 1));
    const reader = await openFileRangeReader(path);
    await expect(readImageInfo('qcow2', reader)).rejects.toMatchObject({
      code: ErrorCodes.ImageInvalid,
    });
    await reader.close();
  });
});

describe("convertImageFile('qcow2')", () => {
  it('awaits prepareTarget once before the first write and reports progress to the end', async () => {
    const t = await freshTarget('progress.raw');
    const calls: string[] = [];
    const progress: number[] = [];
    try {
      await convertImageFile('qcow2', image, {
        target: { fd: t.fd, kind: 'file' },
        prepareTarget: async (info) => {
          calls.push(`prepare ${info.virtualSize}`);
          expect((await stat(t.path)).blocks).toBe(0);
        },
        onProgress: (done, total) => {
          if (progress.length === 0) calls.push('progress');
          expect(total).toBe(SIZE);
          progress.push(done);
        },
      });
    } finally {
      await t.close();
    }
    expect(calls).toEqual([`prepare ${SIZE}`, 'progress']);
    expect(progress.at(-1)).toBe(SIZE);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
  });

  it('passes a failing prepareTarget through and writes nothing', async () => {
    const t = await freshTarget('prepare-fails.raw');
    try {
      await expect(
        convertImageFile('qcow2', image, {
          target: { fd: t.fd, kind: 'file' },
          prepareTarget: () => Promise.reject(new CdiError(ErrorCodes.SizeValidation, 'too small')),
        }),
      ).rejects.toMatchObject({ code: ErrorCodes.SizeValidation });
      expect((await stat(t.path)).blocks).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('stops with CDI_ABORTED when the signal fires', async () => {
    const t = await freshTarget('abort.raw');
    const ac = new AbortController();
    try {
      await expect(
        convertImageFile('qcow2', image, {
          target: { fd: t.fd, kind: 'file' },
          signal: ac.signal,
          onProgress: () => ac.abort(),
        }),
      ).rejects.toMatchObject({ code: ErrorCodes.Aborted });
    } finally {
      await t.close();
    }
  });
});

describe("createImageStreamConverter('qcow2')", () => {
  it('spills clusters whose L2 entry comes later (L1 moved to the end by a resize) and deletes the spill file', async () => {
    const resized = await makeImage(tmp.dir, 'resized', {
      what: 'resized',
      options: 'compat=1.1,cluster_size=4096',
      size: '8M',
      io: ['write -P 0xab 0 6M', 'write -P 0xcd 7M 64k'],
    });
    // Growing the L1 table moves it behind the data: a stream sees the L2 tables and data
    // (more than one window) before the L1 that points at them.
    await sh('qemu-img', ['resize', '-q', resized, '64M']);
    await sh('qemu-io', ['-c', 'write -P 0x44 40M 64k', resized]);
    const reference = `${resized}.ref.raw`;
    await qemuRaw(resized, reference);
    const spillDir = join(tmp.dir, 'spill');
    await sh('mkdir', ['-p', spillDir]);
    const t = await freshTarget('resized.raw', 64 * 1024 * 1024);
    const sink = createImageStreamConverter('qcow2', {
      target: { fd: t.fd, kind: 'file' },
      spillDir,
    });
    try {
      await pipeline(createReadStream(resized), sink);
    } finally {
      await t.close();
    }
    const stats = await sink.result;
    expect(stats.spilledBytes).toBeGreaterThanOrEqual(3 * 1024 * 1024);
    expect(await sameBytes(t.path, reference)).toBe(true);
    expect(await readdir(spillDir)).toEqual([]);
  });

  it('rejects result with CDI_ABORTED when the signal fires', async () => {
    const t = await freshTarget('stream-abort.raw');
    const ac = new AbortController();
    const sink = createImageStreamConverter('qcow2', {
      target: { fd: t.fd, kind: 'file' },
      spillDir: tmp.dir,
      signal: ac.signal,
    });
    ac.abort();
    await expect(sink.result).rejects.toMatchObject({ code: ErrorCodes.Aborted });
    await t.close();
  });

  it('rejects result when destroyed before the end without an error', async () => {
    const t = await freshTarget('stream-destroy.raw');
    const sink = createImageStreamConverter('qcow2', {
      target: { fd: t.fd, kind: 'file' },
      spillDir: tmp.dir,
    });
    sink.write((await readFile(image)).subarray(0, 4096));
    sink.destroy();
    await expect(sink.result).rejects.toMatchObject({ code: ErrorCodes.Aborted });
    await t.close();
  });

  it('fails on a stream that ends inside the header', async () => {
    const t = await freshTarget('short.raw');
    const sink = createImageStreamConverter('qcow2', {
      target: { fd: t.fd, kind: 'file' },
      spillDir: tmp.dir,
    });
    const head = (await readFile(image)).subarray(0, 40);
    await expect(pipeline([head], sink)).rejects.toMatchObject({ code: ErrorCodes.ImageInvalid });
    await t.close();
  });
});

describe('zeroRange', () => {
  it('makes a range of a garbage-filled file read as zeros and leaves the rest', async () => {
    const path = join(tmp.dir, 'garbage.bin');
    await writeFile(path, Buffer.alloc(1024 * 1024, 0xee));
    const fh = await open(path, 'r+');
    await zeroRange(fh.fd, 4096, 512 * 1024);
    await fh.close();
    const data = await readFile(path);
    expect(data.subarray(4096, 4096 + 512 * 1024).every((b) => b === 0)).toBe(true);
    expect(data[4095]).toBe(0xee);
    expect(data[4096 + 512 * 1024]).toBe(0xee);
    expect(data.length).toBe(1024 * 1024);
  });
});

describe('writeAt', () => {
  const bytes = Buffer.alloc(6 * 1024 * 1024 + 4099);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + (i >> 12)) & 0xff;
  it.each([
    { what: 'aligned memory and offset', offset: 0, skew: 0, cut: [1 << 20, 3 << 20] },
    { what: 'an offset inside a block', offset: 511, skew: 0, cut: [4096] },
    { what: 'memory not aligned like the offset', offset: 8192, skew: 1, cut: [777, 2 << 20] },
    { what: 'both unaligned, tiny pieces', offset: 4095, skew: 3, cut: [1, 2, 4097] },
    { what: 'one short piece', offset: 12345, skew: 0, cut: [] as number[] },
  ])('writes every byte in place, direct or not: $what', async ({ offset, skew, cut }) => {
    const path = join(tmp.dir, 'write-at.bin');
    await writeFile(path, Buffer.alloc(offset + bytes.length + 8192, 0xee));
    const data = skew === 0 && cut.length === 0 ? bytes.subarray(0, 100) : bytes;
    // A copy at a chosen distance from an aligned start, so memory alignment is what the row says.
    const backing = Buffer.from(new ArrayBuffer(data.length + 4096 + skew));
    const start = (4096 - (backing.byteOffset % 4096)) % 4096;
    const view = backing.subarray(start + skew, start + skew + data.length);
    data.copy(view);
    const parts: Buffer[] = [];
    let prev = 0;
    for (const c of [...cut, data.length]) {
      parts.push(view.subarray(prev, c));
      prev = c;
    }
    for (const direct of [true, false]) {
      const fh = await open(path, 'r+');
      const dfh = direct ? await open(path, fsConstants.O_RDWR | fsConstants.O_DIRECT) : undefined;
      try {
        await writeAt(fh.fd, dfh?.fd ?? -1, parts, offset);
        await fh.sync();
      } finally {
        await dfh?.close();
        await fh.close();
      }
      const got = await readFile(path);
      expect(got.subarray(offset, offset + data.length).equals(data)).toBe(true);
      expect(got[offset - 1] ?? 0xee).toBe(0xee);
      expect(got[offset + data.length]).toBe(0xee);
    }
  });

  it('reports a bad descriptor as CDI_WRITE_FAILED', async () => {
    await expect(writeAt(1_000_000, -1, [Buffer.from('x')], 0)).rejects.toMatchObject({
      code: ErrorCodes.WriteFailed,
    });
  });
});

describe('isQcow2Header', () => {
  it.each([
    { what: 'qcow2 magic', head: Buffer.from('514649fb00000003', 'hex'), want: true },
    { what: 'qcow (v1) has the same magic', head: Buffer.from('514649fb', 'hex'), want: true },
    { what: 'raw zeros', head: Buffer.alloc(512), want: false },
    { what: 'too short', head: Buffer.from('5146', 'hex'), want: false },
    { what: 'vmdk', head: Buffer.from('4b444d56', 'hex'), want: false },
  ])('$what', ({ head, want }) => {
    expect(isQcow2Header(head)).toBe(want);
  });
});
