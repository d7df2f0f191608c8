// SPDX-License-Identifier: Apache-2.0
// Hostile images: valid qemu-made images with one header or table field patched, each refused
// with its own code and message, from a local file and through the stream converter.
import { readFile, writeFile, open, truncate, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ErrorCodes } from '../common/errors.js';
import {
  convertImageFile,
  createImageStreamConverter,
  openFileRangeReader,
  readImageInfo,
} from './index.js';
import { makeImage, makeTempDir, sh } from './test-helpers/qemu-images.js';

const CS = 65536;
const OFFSET_MASK = 0x00fffffffffffe00n;
const COPIED = 1n << 63n;

type Base = 'plain' | 'compressed' | 'extended';

interface Meta {
  readonly l1Offset: number;
  readonly l2Offset: number;
  /** The first data (or compressed) host offset mapped by L2[0]. */
  readonly firstEntry: bigint;
}

interface Row {
  readonly what: string;
  readonly base: Base;
  readonly patch: (img: Buffer, m: Meta) => Buffer;
  readonly code: string;
  readonly message: RegExp;
  /** True when the header alone is invalid, so `readImageInfo('qcow2')` throws too. */
  readonly headerLevel: boolean;
}

const u32 = (off: number, v: number) => (b: Buffer, _m: Meta) => (b.writeUInt32BE(v, off), b);
const u64 = (off: number, v: bigint) => (b: Buffer, _m: Meta) => (b.writeBigUInt64BE(v, off), b);
const l1e = (f: (m: Meta, b: Buffer) => bigint) => (b: Buffer, m: Meta) => (
  b.writeBigUInt64BE(f(m, b), m.l1Offset),
  b
);
const l2e = (f: (m: Meta, b: Buffer) => bigint) => (b: Buffer, m: Meta) => (
  b.writeBigUInt64BE(f(m, b), m.l2Offset),
  b
);
const pastEnd = (b: Buffer): bigint => BigInt(Math.ceil(b.length / CS) * CS + 16 * CS);

const ROWS: readonly Row[] = [
  {
    what: 'bad magic',
    base: 'plain',
    patch: u32(0, 0x12345678),
    code: ErrorCodes.ImageInvalid,
    message: /not a qcow2 image: bad magic/,
    headerLevel: true,
  },
  {
    what: 'version 4',
    base: 'plain',
    patch: u32(4, 4),
    code: ErrorCodes.ImageUnsupportedFeature,
    message: /unsupported qcow2 version 4/,
    headerLevel: true,
  },
  {
    what: 'cluster bits 8',
    base: 'plain',
    patch: u32(20, 8),
    code: ErrorCodes.ImageInvalid,
    message: /unsupported cluster size: 2\^8/,
    headerLevel: true,
  },
  {
    what: 'cluster bits 22',
    base: 'plain',
    patch: u32(20, 22),
    code: ErrorCodes.ImageInvalid,
    message: /unsupported cluster size: 2\^22/,
    headerLevel: true,
  },
  {
    what: 'unknown incompatible feature bit',
    base: 'plain',
    patch: u64(72, 0x20n),
    code: ErrorCodes.ImageUnsupportedFeature,
    message: /unsupported incompatible feature bits 0x20/,
    headerLevel: true,
  },
  {
    what: 'encryption',
    base: 'plain',
    patch: u32(32, 2),
    code: ErrorCodes.ImageEncrypted,
    message: /image is encrypted \(luks\)/,
    headerLevel: false,
  },
  {
    what: 'external data file bit',
    base: 'plain',
    patch: u64(72, 0x4n),
    code: ErrorCodes.ImageExternalData,
    message: /external data file/,
    headerLevel: false,
  },
  {
    what: "L1 table over qemu's limit",
    base: 'plain',
    patch: u32(36, 0x500000),
    code: ErrorCodes.ImageInvalid,
    message: /l1 table of 5242880 entries exceeds .*L1 size too big/,
    headerLevel: true,
  },
  {
    what: 'L1 table too small for the virtual size',
    base: 'plain',
    patch: u32(36, 0),
    code: ErrorCodes.ImageInvalid,
    message: /l1 table of 0 entries is too small for virtual size 6291456/,
    headerLevel: true,
  },
  {
    what: 'misaligned L1 offset',
    base: 'plain',
    patch: (b, m) => u64(40, BigInt(m.l1Offset + 8))(b, m),
    code: ErrorCodes.ImageInvalid,
    message: /l1 table offset \d+ is not aligned to the cluster size 65536/,
    headerLevel: true,
  },
  {
    what: 'L1 past the end of the file',
    base: 'plain',
    patch: (b, m) => u64(40, pastEnd(b))(b, m),
    code: ErrorCodes.ImageInvalid,
    message: /l1 table at offset \d+ \(8 bytes\) extends past the end of the file \(\d+ bytes\)/,
    headerLevel: true,
  },
  {
    what: 'virtual size that overflows',
    base: 'plain',
    patch: u64(24, 1n << 60n),
    code: ErrorCodes.ImageInvalid,
    message: /virtual size 1152921504606846976 overflows/,
    headerLevel: true,
  },
  {
    what: 'header length over the cluster size',
    base: 'plain',
    patch: u32(100, 0x20000),
    code: ErrorCodes.ImageInvalid,
    message: /header length 131072 exceeds the cluster size 65536/,
    headerLevel: true,
  },
  {
    what: 'refcount table past the end of the file',
    base: 'plain',
    patch: (b, m) => u64(48, pastEnd(b))(b, m),
    code: ErrorCodes.ImageInvalid,
    message: /refcount table at offset \d+ extends past the end of the file/,
    headerLevel: true,
  },
  {
    what: 'unknown compression type',
    base: 'plain',
    patch: (b, m) => (u64(72, 0x8n)(b, m), b.writeUInt8(2, 104), b),
    code: ErrorCodes.ImageUnsupportedFeature,
    message: /unknown compression type 2/,
    headerLevel: true,
  },
  {
    what: 'compression type without its feature bit',
    base: 'plain',
    patch: (b) => (b.writeUInt8(1, 104), b),
    code: ErrorCodes.ImageInvalid,
    message: /compression type 1 disagrees with the compression feature bit/,
    headerLevel: true,
  },
  {
    what: 'too many snapshots',
    base: 'plain',
    patch: u32(60, 70000),
    code: ErrorCodes.ImageInvalid,
    message: /too many snapshots: 70000/,
    headerLevel: true,
  },
  {
    what: 'backing file name too long',
    base: 'plain',
    patch: (b, m) => (u64(8, 1024n)(b, m), u32(16, 5000)(b, m)),
    code: ErrorCodes.ImageInvalid,
    message: /backing file name too long: 5000 bytes/,
    headerLevel: true,
  },
  {
    what: 'L2 table past the end of the file',
    base: 'plain',
    patch: l1e((_m, b) => COPIED | pastEnd(b)),
    code: ErrorCodes.ImageInvalid,
    message: /l2 table offset \d+ in l1 entry 0 extends past the end of the file/,
    headerLevel: false,
  },
  {
    what: 'misaligned L2 table offset',
    base: 'plain',
    patch: l1e((m) => COPIED | BigInt(m.l2Offset + 512)),
    code: ErrorCodes.ImageInvalid,
    message: /l2 table offset \d+ in l1 entry 0 is not aligned to the cluster size 65536/,
    headerLevel: false,
  },
  {
    what: 'data cluster past the end of the file',
    base: 'plain',
    patch: l2e((_m, b) => COPIED | pastEnd(b)),
    code: ErrorCodes.ImageInvalid,
    message: /data cluster offset \d+ \(guest offset 0\) is past the end of the file/,
    headerLevel: false,
  },
  {
    what: 'misaligned data cluster',
    base: 'plain',
    patch: l2e((m) => (m.firstEntry & OFFSET_MASK) + 512n),
    code: ErrorCodes.ImageInvalid,
    message: /data cluster offset \d+ \(guest offset 0\) is not aligned to the cluster size 65536/,
    headerLevel: false,
  },
  {
    what: 'compressed descriptor outside the file',
    base: 'compressed',
    patch: l2e((m) => (m.firstEntry & ~((1n << 54n) - 1n)) | (1n << 40n)),
    code: ErrorCodes.ImageInvalid,
    message:
      /compressed cluster at offset 1099511627776 \(guest offset 0\) points outside the file/,
    headerLevel: false,
  },
  {
    what: 'corrupt compressed data',
    base: 'compressed',
    patch: (b, m) => (
      b.fill(
        0xff,
        Number(m.firstEntry & ((1n << 54n) - 1n)),
        Number(m.firstEntry & ((1n << 54n) - 1n)) + 64,
      ),
      b
    ),
    code: ErrorCodes.ImageInvalid,
    message: /compressed cluster at guest offset 0 is corrupt \(zlib\)/,
    headerLevel: false,
  },
  {
    what: 'subclusters both allocated and zero',
    base: 'extended',
    patch: (b, m) => (b.writeBigUInt64BE(0x0000000100000001n, m.l2Offset + 8), b),
    code: ErrorCodes.ImageInvalid,
    message: /marks subclusters both allocated and zero/,
    headerLevel: false,
  },
  {
    what: 'truncated after the tables',
    base: 'plain',
    patch: (b, m) => b.subarray(0, m.l2Offset + CS + 4096),
    code: ErrorCodes.ImageInvalid,
    message: /past the end of the file|image truncated/,
    headerLevel: false,
  },
];

let tmp: { dir: string; cleanup: () => Promise<void> };
const bases = new Map<Base, { bytes: Buffer; meta: Meta }>();

async function loadBase(path: string): Promise<{ bytes: Buffer; meta: Meta }> {
  const bytes = await readFile(path);
  const l1Offset = Number(bytes.readBigUInt64BE(40));
  const l2Offset = Number(bytes.readBigUInt64BE(l1Offset) & OFFSET_MASK);
  return { bytes, meta: { l1Offset, l2Offset, firstEntry: bytes.readBigUInt64BE(l2Offset) } };
}

beforeAll(async () => {
  tmp = await makeTempDir('cdi-native-hostile-');
  const io = ['write -P 0xab 0 200k', 'write -P 0xcd 1M 64k'];
  const specs: [Base, string, boolean][] = [
    ['plain', 'compat=1.1', false],
    ['compressed', 'compat=1.1', true],
    ['extended', 'compat=1.1,extended_l2=on', false],
  ];
  for (const [name, options, compress] of specs) {
    const path = await makeImage(tmp.dir, name, { what: name, options, size: '6M', io, compress });
    bases.set(name, await loadBase(path));
  }
});
afterAll(async () => {
  await tmp.cleanup();
});

async function target(name: string): Promise<{ fd: number; close: () => Promise<void> }> {
  const path = join(tmp.dir, `${name}.out`);
  await writeFile(path, '');
  await truncate(path, 6 * 1024 * 1024);
  const fh = await open(path, 'r+');
  return { fd: fh.fd, close: () => fh.close() };
}

describe.each(ROWS.map((r, i) => ({ ...r, i })))('$what', (row) => {
  let path: string;
  beforeAll(async () => {
    const base = bases.get(row.base)!;
    path = join(tmp.dir, `hostile${row.i}.qcow2`);
    await writeFile(path, row.patch(Buffer.from(base.bytes), base.meta));
  });

  it('is refused by the local-file converter with its code and message', async () => {
    const t = await target(`h${row.i}-file`);
    try {
      await expect(
        convertImageFile('qcow2', path, { target: { fd: t.fd, kind: 'file' } }),
      ).rejects.toMatchObject({
        code: row.code,
        message: expect.stringMatching(row.message) as unknown,
      });
    } finally {
      await t.close();
    }
  });

  it('gets the same code from the stream converter', async () => {
    const t = await target(`h${row.i}-stream`);
    try {
      const sink = createImageStreamConverter('qcow2', {
        target: { fd: t.fd, kind: 'file' },
        spillDir: tmp.dir,
      });
      await expect(pipeline(Readable.from([await readFile(path)]), sink)).rejects.toMatchObject({
        code: row.code,
      });
      await expect(sink.result).rejects.toMatchObject({ code: row.code });
    } finally {
      await t.close();
    }
  });

  it("is reported by readImageInfo('qcow2') as the header allows", async () => {
    const reader = await openFileRangeReader(path);
    try {
      if (row.headerLevel) {
        await expect(readImageInfo('qcow2', reader)).rejects.toMatchObject({ code: row.code });
      } else {
        const info = await readImageInfo('qcow2', reader);
        expect(info.format).toBe('qcow2');
        if (row.code !== ErrorCodes.ImageInvalid) expect(info.refusal?.code).toBe(row.code);
      }
    } finally {
      await reader.close();
    }
  });
});

describe('images made by qemu-img that are refused', () => {
  it.each([
    {
      what: 'backing file (never opened)',
      args: ['-u', '-b', '/etc/shadow', '-F', 'raw'],
      code: ErrorCodes.ImageBackingFile,
      message: /image has a backing file '\/etc\/shadow'; backing files are never opened/,
    },
    {
      what: 'external data file',
      args: ['-o', 'data_file=DATA'],
      code: ErrorCodes.ImageExternalData,
      message: /external data file '.*data\.raw'/,
    },
  ])('$what', async ({ args, code, message, what }) => {
    const path = join(tmp.dir, `${what.replace(/\W+/g, '-')}.qcow2`);
    const real = args.map((a) => a.replace('DATA', `${path}.data.raw`));
    await sh('qemu-img', ['create', '-q', '-f', 'qcow2', ...real, path, '1M']);
    const reader = await openFileRangeReader(path);
    const info = await readImageInfo('qcow2', reader);
    await reader.close();
    expect(info.refusal).toMatchObject({
      code,
      message: expect.stringMatching(message) as unknown,
    });
    const t = await target(`made-${code}`);
    try {
      await expect(
        convertImageFile('qcow2', path, { target: { fd: t.fd, kind: 'file' } }),
      ).rejects.toMatchObject({
        code,
        message: expect.stringMatching(message) as unknown,
      });
    } finally {
      await t.close();
    }
  });
});

it('a copy of a valid base converts (the patches above are what breaks them)', async () => {
  const src = join(tmp.dir, 'plain.qcow2');
  await copyFile(src, join(tmp.dir, 'valid.qcow2'));
  const t = await target('valid');
  try {
    const stats = await convertImageFile('qcow2', join(tmp.dir, 'valid.qcow2'), {
      target: { fd: t.fd, kind: 'file' },
    });
    expect(stats.dataBytesWritten).toBe(200 * 1024 + 64 * 1024);
  } finally {
    await t.close();
  }
});
