// SPDX-License-Identifier: Apache-2.0
// Hostile VDI, VHD, VHDX and VMDK images: valid qemu-made images with one header, table or grain field
// patched, each refused with its code and a clear message, from a local file and through the
// stream converter.
import { createReadStream } from 'node:fs';
import { open, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ErrorCodes } from '../common/errors.js';
import { makeRawImage, makeTempDir, qemuImg } from '../test/fixtures/index.js';
import {
  convertImageFile,
  createImageStreamConverter,
  type BlockMapFormat,
  type ConvertStats,
} from './index.js';
import { toVmwareStreamLayout } from './test-helpers/vmware-stream.js';

const MiB = 1024 * 1024;

type Base = 'vdi' | 'vhd' | 'vmdk' | 'vmdk-stream' | 'vmdk-vmware' | 'vhdx';
const BASES: Record<Base, { qemu: string; options: string; format: BlockMapFormat }> = {
  vdi: { qemu: 'vdi', options: 'static=off', format: 'vdi' },
  vhd: { qemu: 'vpc', options: 'subformat=dynamic', format: 'vhd' },
  vmdk: { qemu: 'vmdk', options: 'subformat=monolithicSparse', format: 'vmdk' },
  'vmdk-stream': { qemu: 'vmdk', options: 'subformat=streamOptimized', format: 'vmdk' },
  // Rewritten into VMware's layout (grain directory and footer at the end).
  'vmdk-vmware': { qemu: 'vmdk', options: 'subformat=streamOptimized', format: 'vmdk' },
  vhdx: { qemu: 'vhdx', options: 'subformat=fixed,block_size=1M', format: 'vhdx' },
};

/** CRC-32C as VHDX checksums headers and region tables (checksum field at `at` read as 0). */
function crc32c(b: Buffer, at: number): number {
  let crc = 0xffffffff;
  for (let i = 0; i < b.length; i++) {
    crc ^= i >= at && i < at + 4 ? 0 : b[i]!;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return ~crc >>> 0;
}

/** Rewrites the checksums of both VHDX headers after a patch. */
function vhdxResumHeaders(b: Buffer): Buffer {
  for (const off of [64 * 1024, 128 * 1024]) {
    const h = b.subarray(off, off + 4096);
    h.writeUInt32LE(crc32c(h, 4), 4);
  }
  return b;
}

/** Moves the VHDX region with this GUID to `offset` and rewrites the region table's checksum. */
function vhdxMoveRegion(b: Buffer, guid: string, offset: number): Buffer {
  const rt = 192 * 1024;
  for (let i = 0; i < b.readUInt32LE(rt + 8); i++) {
    const e = rt + 16 + i * 32;
    if (b.subarray(e, e + 16).toString('hex') === guid) b.writeBigUInt64LE(BigInt(offset), e + 16);
  }
  const table = b.subarray(rt, rt + 64 * 1024);
  table.writeUInt32LE(crc32c(table, 4), 4);
  return b;
}

/** The VHDX region with this GUID (bytes as stored): [offset, length]. */
function vhdxRegion(b: Buffer, guid: string): [number, number] {
  const rt = 192 * 1024;
  for (let i = 0; i < b.readUInt32LE(rt + 8); i++) {
    const e = rt + 16 + i * 32;
    if (b.subarray(e, e + 16).toString('hex') === guid) {
      return [Number(b.readBigUInt64LE(e + 16)), b.readUInt32LE(e + 24)];
    }
  }
  throw new Error(`no region ${guid}`);
}
const VHDX_BAT = '6677c22d23f600429d64115e9bfd4a08';
const VHDX_METADATA = '06a27c8b90479a4bb8fe575f050f886e';
const VHDX_FILE_PARAMETERS = '3767a1ca36fa434db3b633f0aa44e76b';
const VHDX_DISK_SIZE = '2442a52f1bcd7648b2115dbed83bf4b8';

/** Absolute offset of a VHDX metadata item's data. */
function vhdxItem(b: Buffer, guid: string): number {
  const [meta] = vhdxRegion(b, VHDX_METADATA);
  for (let i = 0; i < b.readUInt16LE(meta + 10); i++) {
    const e = meta + 32 + i * 32;
    if (b.subarray(e, e + 16).toString('hex') === guid) return meta + b.readUInt32LE(e + 16);
  }
  throw new Error(`no metadata item ${guid}`);
}

/** Where the block tables of a base image are. */
function vdiMap(b: Buffer): number {
  return b.readUInt32LE(340);
}
function vhdBat(b: Buffer): number {
  return Number(b.readBigUInt64BE(512 + 16));
}
function vmdkGt(b: Buffer): number {
  const gd = Number(b.readBigUInt64LE(56)) * 512;
  return b.readUInt32LE(gd) * 512;
}
/** First grain marker of a streamOptimized image. */
function vmdkFirstGrain(b: Buffer): number {
  return Number(b.readBigUInt64LE(64)) * 512;
}

interface Row {
  readonly what: string;
  readonly base: Base;
  readonly patch: (b: Buffer) => Buffer;
  readonly code: string;
  readonly message: RegExp;
  /** The stream converter's message when it differs (it refuses every row too). */
  readonly stream?: RegExp;
}

const ROWS: readonly Row[] = [
  {
    what: 'vdi block map offset past the end of the file',
    base: 'vdi',
    patch: (b) => (b.writeUInt32LE(0x7fff0000, 340), b),
    code: ErrorCodes.ImageInvalid,
    message: /vdi block map at offset 2147418112 .* extends past the end of the file/,
    stream: /block table at offset 2147418112 lies past the end of the stream/,
  },
  {
    what: 'vdi block map entry past the end of the file',
    base: 'vdi',
    patch: (b) => (b.writeUInt32LE(0x100000, vdiMap(b)), b),
    code: ErrorCodes.ImageInvalid,
    message: /block 0 \(guest offset 0\) at offset \d+ lies past the end of the file/,
    stream: /image truncated: block at offset \d+ lies past the end of the stream/,
  },
  {
    what: 'vdi block map entries duplicated',
    base: 'vdi',
    patch: (b) => (b.writeUInt32LE(b.readUInt32LE(vdiMap(b)), vdiMap(b) + 4), b),
    code: ErrorCodes.ImageOverlap,
    message: /host bytes at offset \d+ are used twice, by (block 0|a block) and by block 1/,
  },
  {
    what: 'vdi disk size 2^63',
    base: 'vdi',
    patch: (b) => (b.writeBigUInt64LE(1n << 63n, 368), b),
    code: ErrorCodes.ImageInvalid,
    message: /vdi virtual size 9223372036854775808 exceeds the supported maximum of 64 TiB/,
  },
  {
    what: 'vdi block size 0',
    base: 'vdi',
    patch: (b) => (b.writeUInt32LE(0, 376), b),
    code: ErrorCodes.ImageInvalid,
    message: /vdi block size 0 is not a power of two/,
  },
  {
    what: 'vdi block size not a power of two',
    base: 'vdi',
    patch: (b) => (b.writeUInt32LE(3 * 65536, 376), b),
    code: ErrorCodes.ImageInvalid,
    message: /vdi block size 196608 is not a power of two/,
  },
  {
    what: 'vdi header truncated',
    base: 'vdi',
    patch: (b) => b.subarray(0, 300),
    code: ErrorCodes.ImageInvalid,
    message: /image too short for a vdi header: 300 bytes/,
    stream: /image too short for a vdi header: 300 bytes/,
  },
  {
    what: 'vdi with a parent',
    base: 'vdi',
    patch: (b) => (b.fill(7, 440, 456), b),
    code: ErrorCodes.ImageBackingFile,
    message: /differencing image with a parent; parents are never opened/,
  },
  {
    what: 'vhd block table past the end of the file',
    base: 'vhd',
    patch: (b) => (b.writeBigUInt64BE(1n << 40n, 512 + 16), b),
    code: ErrorCodes.ImageInvalid,
    message: /vhd block allocation table at offset 1099511627776 .* extends past the end/,
    stream: /block table at offset 1099511627776 lies past the end of the stream/,
  },
  {
    what: 'vhd block table entry past the end of the file',
    base: 'vhd',
    patch: (b) => (b.writeUInt32BE(0x7ffffff0, vhdBat(b)), b),
    code: ErrorCodes.ImageInvalid,
    message: /block 0 \(guest offset 0\) at offset \d+ lies past the end of the file/,
    stream: /image truncated: block at offset \d+ lies past the end of the stream/,
  },
  {
    what: 'vhd block table entries duplicated',
    base: 'vhd',
    patch: (b) => (b.writeUInt32BE(b.readUInt32BE(vhdBat(b)), vhdBat(b) + 4), b),
    code: ErrorCodes.ImageOverlap,
    message: /host bytes at offset \d+ are used twice, by (block 0|a block) and by block 1/,
  },
  {
    what: 'vhd size 2^63 (Hyper-V creator: footer size counts)',
    base: 'vhd',
    patch: (b) => (b.write('win ', 28, 'latin1'), b.writeBigUInt64BE(1n << 63n, 48), b),
    code: ErrorCodes.ImageInvalid,
    message: /vhd disk of 18014398509481984 sectors exceeds the format's 2040 GiB/,
  },
  {
    what: 'vhd block size 0',
    base: 'vhd',
    patch: (b) => (b.writeUInt32BE(0, 512 + 32), b),
    code: ErrorCodes.ImageInvalid,
    message: /vhd block size 0 is not a power of two of at least 512/,
  },
  {
    what: 'vhd block size not a power of two',
    base: 'vhd',
    patch: (b) => (b.writeUInt32BE(3 << 20, 512 + 32), b),
    code: ErrorCodes.ImageInvalid,
    message: /vhd block size 3145728 is not a power of two/,
  },
  {
    what: 'vhd block size over 256 MiB',
    base: 'vhd',
    patch: (b) => (b.writeUInt32BE(512 << 20, 512 + 32), b),
    code: ErrorCodes.ImageInvalid,
    message: /vhd block size 536870912 is too large/,
  },
  {
    what: 'vhd block table too small for the disk',
    base: 'vhd',
    patch: (b) => (b.writeUInt32BE(1, 512 + 28), b),
    code: ErrorCodes.ImageInvalid,
    message: /vhd block table of 1 entries is too small for \d+ bytes/,
  },
  {
    what: 'vhd block table of more than 64 Mi entries',
    base: 'vhd',
    patch: (b) => {
      b.write('win ', 28, 'latin1'); // Hyper-V creator: the footer's size counts, not CHS
      b.writeBigUInt64BE(64n << 30n, 48); // 64 GiB
      b.writeUInt32BE(0xffffffff, 512 + 28);
      b.writeUInt32BE(512, 512 + 32);
      return b;
    },
    code: ErrorCodes.ImageInvalid,
    message: /vhd block table of 134217728 entries is too large/,
  },
  {
    what: 'vhd dynamic header truncated',
    base: 'vhd',
    patch: (b) => b.subarray(0, 700),
    code: ErrorCodes.ImageInvalid,
    message: /vhd dynamic header at offset 512 is not in the first 700 bytes/,
  },
  {
    what: 'vmdk grain directory past the end of the file',
    base: 'vmdk',
    patch: (b) => (b.writeBigUInt64LE(1n << 30n, 56), b),
    code: ErrorCodes.ImageInvalid,
    message: /vmdk grain directory at offset 549755813888 .* extends past the end/,
    stream: /block table at offset 549755813888 lies past the end of the stream/,
  },
  {
    what: 'vmdk grain table entry past the end of the file',
    base: 'vmdk',
    patch: (b) => (b.writeUInt32LE(0x7ffffff0, vmdkGt(b)), b),
    code: ErrorCodes.ImageInvalid,
    message: /block 0 \(guest offset 0\) at offset \d+ lies past the end of the file/,
    stream: /image truncated: block at offset \d+ lies past the end of the stream/,
  },
  {
    what: 'vmdk grain table entries duplicated',
    base: 'vmdk',
    patch: (b) => (b.writeUInt32LE(b.readUInt32LE(vmdkGt(b)), vmdkGt(b) + 4), b),
    code: ErrorCodes.ImageOverlap,
    message: /host bytes at offset \d+ are used twice, by (block 0|a block) and by block 1/,
  },
  {
    what: 'vmdk capacity of 2^60 sectors',
    base: 'vmdk',
    patch: (b) => (b.writeBigUInt64LE(1n << 60n, 12), b),
    code: ErrorCodes.ImageInvalid,
    message: /vmdk capacity of 1152921504606846976 sectors exceeds the supported maximum/,
  },
  {
    what: 'vmdk grain size 0',
    base: 'vmdk',
    patch: (b) => (b.writeBigUInt64LE(0n, 20), b),
    code: ErrorCodes.ImageInvalid,
    message: /vmdk grain size of 0 sectors is not a power of two/,
  },
  {
    what: 'vmdk grain size not a power of two',
    base: 'vmdk',
    patch: (b) => (b.writeBigUInt64LE(100n, 20), b),
    code: ErrorCodes.ImageInvalid,
    message: /vmdk grain size of 100 sectors is not a power of two/,
  },
  {
    what: 'vmdk header truncated',
    base: 'vmdk',
    patch: (b) => b.subarray(0, 50),
    code: ErrorCodes.ImageInvalid,
    message: /image too short for a vmdk header: 50 bytes/,
  },
  {
    what: 'vmdk with a parent in its embedded descriptor',
    base: 'vmdk',
    patch: (b) => {
      const desc = Number(b.readBigUInt64LE(28)) * 512;
      const end = b.indexOf(0, desc);
      b.write('parentFileNameHint="base.vmdk"\n', end, 'latin1');
      return b;
    },
    code: ErrorCodes.ImageBackingFile,
    message: /vmdk image has a parent 'base.vmdk'; parents are never opened/,
  },
  {
    what: 'vmdk streamOptimized grain with a bad deflate stream',
    base: 'vmdk-stream',
    patch: (b) => (b.fill(0x55, vmdkFirstGrain(b) + 14, vmdkFirstGrain(b) + 40), b),
    code: ErrorCodes.ImageInvalid,
    message: /vmdk grain at guest offset 0 is corrupt \(bad deflate stream\)/,
  },
  {
    what: 'vmdk streamOptimized grain marker naming a sector inside a grain',
    base: 'vmdk-stream',
    patch: (b) => (b.writeBigUInt64LE(3n, vmdkFirstGrain(b)), b),
    code: ErrorCodes.ImageInvalid,
    // Every converter reads a streamOptimized image in order, by its markers.
    message: /names sector 3, not a grain of the disk/,
  },
  {
    what: 'vmdk VMware layout without its footer',
    base: 'vmdk-vmware',
    patch: (b) => b.subarray(0, b.length - 1536),
    code: ErrorCodes.ImageInvalid,
    message: /vmdk footer is missing or corrupt/,
  },
  {
    what: 'vmdk VMware layout with a corrupt footer marker',
    base: 'vmdk-vmware',
    patch: (b) => (b.writeUInt32LE(9, b.length - 1536 + 12), b),
    code: ErrorCodes.ImageInvalid,
    message: /unknown vmdk marker type 9/,
  },
  {
    what: 'vmdk VMware layout with a footer whose directory is past the end',
    base: 'vmdk-vmware',
    patch: (b) => (b.writeBigUInt64LE(1n << 30n, b.length - 1024 + 56), b),
    code: ErrorCodes.ImageInvalid,
    message: /vmdk grain directory at offset 549755813888 .* extends past the end/,
  },
  {
    what: 'vmdk VMware layout with a footer that again puts the directory at the end',
    base: 'vmdk-vmware',
    patch: (b) => (b.writeBigUInt64LE(0xffffffffffffffffn, b.length - 1024 + 56), b),
    code: ErrorCodes.ImageInvalid,
    message: /vmdk footer does not locate the grain directory/,
  },
  {
    what: 'vhdx with both headers corrupt',
    base: 'vhdx',
    patch: (b) => (b.writeUInt32LE(1, 64 * 1024 + 4), b.writeUInt32LE(1, 128 * 1024 + 4), b),
    code: ErrorCodes.ImageInvalid,
    message: /no valid vhdx header/,
  },
  {
    what: 'vhdx region table with a bad checksum',
    base: 'vhdx',
    patch: (b) => (b.writeUInt32LE(b.readUInt32LE(192 * 1024 + 4) ^ 1, 192 * 1024 + 4), b),
    code: ErrorCodes.ImageInvalid,
    message: /vhdx region table has a bad signature or checksum/,
  },
  {
    what: 'vhdx with a log to replay',
    base: 'vhdx',
    patch: (b) => {
      b.fill(0x42, 64 * 1024 + 48, 64 * 1024 + 64);
      b.fill(0x42, 128 * 1024 + 48, 128 * 1024 + 64);
      return vhdxResumHeaders(b);
    },
    code: ErrorCodes.ImageUnsupportedFeature,
    message: /vhdx image has a log that needs to be replayed/,
  },
  {
    what: 'vhdx header version 2',
    base: 'vhdx',
    patch: (b) => {
      b.writeUInt16LE(2, 64 * 1024 + 66);
      b.writeUInt16LE(2, 128 * 1024 + 66);
      return vhdxResumHeaders(b);
    },
    code: ErrorCodes.ImageUnsupportedFeature,
    message: /unsupported vhdx version 2/,
  },
  {
    what: 'vhdx block table region overlapping the metadata region',
    base: 'vhdx',
    patch: (b) => vhdxMoveRegion(b, VHDX_BAT, vhdxRegion(b, VHDX_METADATA)[0]),
    code: ErrorCodes.ImageInvalid,
    message: /vhdx regions at offsets \d+ and \d+ overlap/,
  },
  {
    what: 'vhdx region not 1 MiB aligned',
    base: 'vhdx',
    patch: (b) => vhdxMoveRegion(b, VHDX_BAT, vhdxRegion(b, VHDX_BAT)[0] + 4096),
    code: ErrorCodes.ImageInvalid,
    message: /vhdx region at offset \d+ is not 1 MiB aligned/,
  },
  {
    what: 'vhdx block table entry past the end of the file',
    base: 'vhdx',
    patch: (b) => (b.writeBigUInt64LE((0x40000n << 20n) | 6n, vhdxRegion(b, VHDX_BAT)[0]), b),
    code: ErrorCodes.ImageInvalid,
    message: /block 0 \(guest offset 0\) at offset 274877906944 lies past the end of the file/,
    stream: /image truncated: block at offset 274877906944 lies past the end of the stream/,
  },
  {
    what: 'vhdx block table entries duplicated',
    base: 'vhdx',
    patch: (b) => {
      const [bat] = vhdxRegion(b, VHDX_BAT);
      b.writeBigUInt64LE(b.readBigUInt64LE(bat), bat + 8);
      return b;
    },
    code: ErrorCodes.ImageOverlap,
    message: /host bytes at offset \d+ are used twice, by (block 0|a block) and by block 1/,
  },
  {
    what: 'vhdx disk size 2^63',
    base: 'vhdx',
    patch: (b) => (b.writeBigUInt64LE(1n << 63n, vhdxItem(b, VHDX_DISK_SIZE)), b),
    code: ErrorCodes.ImageInvalid,
    message: /vhdx virtual size 9223372036854775808 exceeds the supported maximum of 64 TiB/,
  },
  {
    what: 'vhdx block size not a power of two',
    base: 'vhdx',
    patch: (b) => (b.writeUInt32LE(3 << 20, vhdxItem(b, VHDX_FILE_PARAMETERS)), b),
    code: ErrorCodes.ImageInvalid,
    message: /vhdx block size 3145728 is not a power of two from 1 MiB to 256 MiB/,
  },
  {
    what: 'vhdx block size 0',
    base: 'vhdx',
    patch: (b) => (b.writeUInt32LE(0, vhdxItem(b, VHDX_FILE_PARAMETERS)), b),
    code: ErrorCodes.ImageInvalid,
    message: /vhdx block size 0 is not a power of two/,
  },
  {
    what: 'vhdx differencing disk (has a parent)',
    base: 'vhdx',
    patch: (b) => {
      const at = vhdxItem(b, VHDX_FILE_PARAMETERS) + 4;
      b.writeUInt32LE(b.readUInt32LE(at) | 2, at);
      return b;
    },
    code: ErrorCodes.ImageBackingFile,
    message: /vhdx image is a differencing disk with a parent/,
  },
  {
    what: 'vhdx header truncated',
    base: 'vhdx',
    patch: (b) => b.subarray(0, 100 * 1024),
    code: ErrorCodes.ImageInvalid,
    message: /image too short for the vhdx headers and region table: 102400 bytes/,
  },
];

let tmp: { dir: string; cleanup: () => Promise<void> };
const bases = new Map<Base, string>();

beforeAll(async () => {
  tmp = await makeTempDir('cdi-format-hostile-');
  const raw = await makeRawImage(join(tmp.dir, 'base.raw'), 5 * MiB, [
    { offset: 0, length: 200_000, seed: 1 },
    { offset: 2 * MiB, length: 2 * MiB + 4096, seed: 2 },
  ]);
  for (const [name, b] of Object.entries(BASES)) {
    const path = join(tmp.dir, `${name}.img`);
    await qemuImg('convert', '-f', 'raw', '-O', b.qemu, '-o', b.options, raw, path);
    if (name === 'vmdk-vmware') {
      await toVmwareStreamLayout(path, `${path}.vmware`);
      bases.set(name, `${path}.vmware`);
    } else {
      bases.set(name as Base, path);
    }
  }
});

afterAll(async () => {
  await tmp.cleanup();
});

async function convert(
  how: 'file' | 'stream',
  format: BlockMapFormat,
  image: string,
): Promise<ConvertStats> {
  const out = `${image}.${how}.out`;
  await writeFile(out, '');
  await truncate(out, 0);
  const fh = await open(out, 'r+');
  try {
    const target = { fd: fh.fd, kind: 'file' as const };
    const options = {
      target,
      spillDir: tmp.dir,
      prepareTarget: async (info: { virtualSize: number }) => fh.truncate(info.virtualSize),
    };
    if (how === 'file') return await convertImageFile(format, image, options);
    const sink = createImageStreamConverter(format, options);
    await pipeline(createReadStream(image, { highWaterMark: 64 * 1024 }), sink);
    return await sink.result;
  } finally {
    await fh.close();
  }
}

describe.each(ROWS.map((r, i) => ({ ...r, i })))('$what', (row) => {
  let image: string;
  beforeAll(async () => {
    image = join(tmp.dir, `hostile-${row.i}.img`);
    const bytes = await readFile(bases.get(row.base)!);
    await writeFile(image, row.patch(bytes));
  });

  it('is refused from a local file', async () => {
    await expect(convert('file', BASES[row.base].format, image)).rejects.toMatchObject({
      code: row.code,
      message: expect.stringMatching(row.message) as unknown,
    });
  });

  it('is refused by the stream converter', async () => {
    const format = BASES[row.base].format;
    await expect(convert('stream', format, image)).rejects.toMatchObject({
      code: row.code,
      message: expect.stringMatching(row.stream ?? row.message) as unknown,
    });
  });
});

it('an unpatched base of each kind converts (the rows above can fail only by their patch)', async () => {
  for (const [name, path] of bases) {
    const stats = await convert('file', BASES[name].format, path);
    expect(stats.dataBytesWritten).toBeGreaterThan(0);
    expect((await stat(path)).size).toBeGreaterThan(0);
  }
});
