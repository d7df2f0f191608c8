// SPDX-License-Identifier: Apache-2.0
// The byte-identity matrix of VDI, VHD, VHDX and VMDK: raw images made with makeRawImage, turned into
// each format by `qemu-img convert -O <fmt>`, converted from a local file, over HTTP ranges and
// through the stream converter (plain and behind gzip), and compared with
// `qemu-img convert -f <fmt> -O raw`.
import { createReadStream } from 'node:fs';
import { open, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  makeRawImage,
  makeTempDir,
  qemuImg,
  qemuIo,
  sameContent,
  type DataExtent,
} from '../test/fixtures/index.js';
import {
  convertImageFile,
  convertImageRanged,
  createImageStreamConverter,
  readImageInfo,
  openFileRangeReader,
  type BlockMapFormat,
  type ConvertStats,
  type ConvertTarget,
} from './index.js';
import { httpRangeReader, serveFile } from './test-helpers/http-range-server.js';
import { sh } from './test-helpers/qemu-images.js';
import { toVmwareStreamLayout } from './test-helpers/vmware-stream.js';

const MiB = 1024 * 1024;

/** One output format of `qemu-img convert`. */
interface Variant {
  readonly what: string;
  readonly format: BlockMapFormat;
  /** qemu's driver name and `-o` options. */
  readonly qemu: string;
  readonly options: string;
  readonly subformat: string;
  /** A fixed VHD streams as raw (footer at the end): no stream modes. */
  readonly streams: boolean;
  /** Rewrite into VMware's streamOptimized layout (grain directory and footer at the end). */
  readonly vmware?: boolean;
  /** qemu-io commands run on the image after the conversion, given the disk size. */
  readonly io?: (size: number) => string[];
}

const VARIANTS: readonly Variant[] = [
  {
    what: 'vdi dynamic',
    format: 'vdi',
    qemu: 'vdi',
    options: 'static=off',
    subformat: 'dynamic',
    streams: true,
  },
  {
    what: 'vdi static',
    format: 'vdi',
    qemu: 'vdi',
    options: 'static=on',
    subformat: 'static',
    streams: true,
  },
  {
    what: 'vhd dynamic',
    format: 'vhd',
    qemu: 'vpc',
    options: 'subformat=dynamic',
    subformat: 'dynamic',
    streams: true,
  },
  {
    what: 'vhd fixed',
    format: 'vhd',
    qemu: 'vpc',
    options: 'subformat=fixed',
    subformat: 'fixed',
    streams: false,
  },
  {
    what: 'vmdk monolithicSparse',
    format: 'vmdk',
    qemu: 'vmdk',
    options: 'subformat=monolithicSparse',
    subformat: 'monolithicSparse',
    streams: true,
  },
  {
    what: 'vhdx dynamic (8 MiB blocks)',
    format: 'vhdx',
    qemu: 'vhdx',
    options: 'subformat=dynamic',
    subformat: 'dynamic',
    streams: true,
  },
  {
    what: 'vhdx dynamic, 1 MiB blocks',
    format: 'vhdx',
    qemu: 'vhdx',
    options: 'subformat=dynamic,block_size=1M',
    subformat: 'dynamic',
    streams: true,
  },
  {
    what: 'vhdx fixed',
    format: 'vhdx',
    qemu: 'vhdx',
    options: 'subformat=fixed,block_size=1M',
    subformat: 'fixed',
    streams: true,
  },
  {
    what: 'vmdk monolithicSparse with zeroed grains (grain table entry 1)',
    format: 'vmdk',
    qemu: 'vmdk',
    options: 'subformat=monolithicSparse,zeroed_grain=on',
    subformat: 'monolithicSparse',
    streams: true,
    io: (size) => (size >= 128 * 1024 ? ['write -z 0 64k', 'write -z 64k 64k'] : []),
  },
  {
    what: 'vmdk streamOptimized',
    format: 'vmdk',
    qemu: 'vmdk',
    options: 'subformat=streamOptimized',
    subformat: 'streamOptimized',
    streams: true,
  },
  {
    what: 'vmdk streamOptimized, VMware layout (directory at the end)',
    format: 'vmdk',
    qemu: 'vmdk',
    options: 'subformat=streamOptimized',
    subformat: 'streamOptimized',
    streams: true,
    vmware: true,
  },
];

/** Raw layouts: sizes off the block/grain size, empty, data at the edges and across blocks. */
const LAYOUTS: readonly { what: string; size: number; extents: readonly DataExtent[] }[] = [
  { what: 'empty 3 MiB disk', size: 3 * MiB, extents: [] },
  {
    what: 'odd size, data at the start and the end',
    size: 5_000_000,
    extents: [
      { offset: 0, length: 100_000, seed: 1 },
      { offset: 4_900_000, length: 100_000, seed: 2 },
    ],
  },
  {
    what: 'data across block boundaries, zero blocks between',
    size: 9 * MiB,
    extents: [
      { offset: 900 * 1024, length: 300 * 1024, seed: 3 },
      { offset: 2 * MiB - 1000, length: 2 * MiB + 2000, seed: 4 },
      { offset: 7 * MiB + 4096, length: 65536, seed: 5 },
    ],
  },
  { what: 'one sector', size: 512, extents: [{ offset: 0, length: 512, seed: 6 }] },
];

type Mode = 'local file' | 'http ranges' | 'stream' | 'gzip stream';
const MODES: readonly Mode[] = ['local file', 'http ranges', 'stream', 'gzip stream'];

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTempDir('cdi-format-matrix-');
});
afterAll(async () => {
  await tmp.cleanup();
});

async function convertBy(
  mode: Mode,
  format: BlockMapFormat,
  image: string,
  target: ConvertTarget,
): Promise<ConvertStats> {
  const options = { target, spillDir: tmp.dir };
  if (mode === 'local file') return convertImageFile(format, image, options);
  if (mode === 'http ranges') {
    const server = await serveFile(image, true);
    try {
      return await convertImageRanged(format, await httpRangeReader(server.url), options);
    } finally {
      await server.close();
    }
  }
  // A plain stream knows its length (like an HTTP Content-Length); the gzip one does not.
  const sink = createImageStreamConverter(
    format,
    mode === 'stream' ? { ...options, size: (await stat(image)).size } : options,
  );
  if (mode === 'stream') {
    await pipeline(createReadStream(image, { highWaterMark: 64 * 1024 }), sink);
  } else {
    await pipeline(createReadStream(`${image}.gz`), createGunzip(), sink);
  }
  return sink.result;
}

describe.each(VARIANTS.map((v, i) => ({ ...v, i })))('$what', (variant) => {
  describe.each(LAYOUTS.map((l, j) => ({ ...l, j })))('$what', (layout) => {
    const name = `v${variant.i}-l${layout.j}`;
    let image: string;
    let reference: string;
    let virtualSize: number;

    beforeAll(async () => {
      const raw = await makeRawImage(join(tmp.dir, `${name}.raw`), layout.size, layout.extents);
      image = join(tmp.dir, `${name}.${variant.format}`);
      await qemuImg('convert', '-f', 'raw', '-O', variant.qemu, '-o', variant.options, raw, image);
      const io = variant.io?.(layout.size) ?? [];
      if (io.length > 0) await qemuIo(image, variant.qemu, ...io);
      if (variant.vmware === true) {
        await toVmwareStreamLayout(image, `${image}.vmware`);
        image = `${image}.vmware`;
      }
      reference = join(tmp.dir, `${name}.ref`);
      await qemuImg('convert', '-f', variant.qemu, '-O', 'raw', image, reference);
      virtualSize = (await stat(reference)).size;
      await sh('gzip', ['-k', '-1', image]);
    });

    it('reports what qemu-img info reports', async () => {
      const reader = await openFileRangeReader(image);
      try {
        const info = await readImageInfo(variant.format, reader);
        expect(info.virtualSize).toBe(virtualSize);
        expect(info.format).toBe(variant.format);
        expect(info.subformat).toBe(variant.subformat);
        const io = variant.io?.(layout.size) ?? [];
        if (io.length > 0) await qemuIo(image, variant.qemu, ...io);
        if (variant.vmware === true) {
          // GD_AT_END in the header: only the footer locates the grain directory.
          const header = await reader.read(0, 512);
          expect(header.readBigUInt64LE(56)).toBe(0xffffffffffffffffn);
        }
      } finally {
        await reader.close();
      }
    });

    it.each(
      MODES.filter((m) => variant.streams || !m.includes('stream')).map((mode) => ({ mode })),
    )('converts from $mode to the bytes qemu-img writes', async ({ mode }) => {
      const out = join(tmp.dir, `${name}.${mode.replace(/ /g, '-')}.out`);
      await writeFile(out, '');
      await truncate(out, virtualSize);
      const fh = await open(out, 'r+');
      let stats: ConvertStats;
      try {
        stats = await convertBy(mode, variant.format, image, { fd: fh.fd, kind: 'file' });
      } finally {
        await fh.close();
      }
      expect(await sameContent(out, reference)).toBe(true);
      expect(stats.dataBytesWritten + stats.zeroBytes).toBe(virtualSize);
    });
  });
});

describe('block targets (old content unknown)', () => {
  it.each(
    VARIANTS.flatMap((v) =>
      (v.streams ? (['local file', 'stream'] as const) : (['local file'] as const)).map((mode) => ({
        ...v,
        mode,
      })),
    ),
  )('zeroes what is not data: $what from $mode', async (v) => {
    const name = `block-${v.qemu}-${v.subformat}-${v.mode.replace(/ /g, '-')}`;
    const raw = await makeRawImage(join(tmp.dir, `${name}.raw`), 6 * MiB, [
      { offset: 0, length: 100_000, seed: 7 },
      { offset: 4 * MiB, length: 70_000, seed: 8 },
    ]);
    const image = join(tmp.dir, `${name}.img`);
    await qemuImg('convert', '-f', 'raw', '-O', v.qemu, '-o', v.options, raw, image);
    const reference = join(tmp.dir, `${name}.ref`);
    await qemuImg('convert', '-f', v.qemu, '-O', 'raw', image, reference);
    const size = (await stat(reference)).size;
    const out = join(tmp.dir, `${name}.out`);
    await writeFile(out, Buffer.alloc(size, 0xff));
    const fh = await open(out, 'r+');
    try {
      await convertBy(v.mode, v.format, image, { fd: fh.fd, kind: 'block' });
    } finally {
      await fh.close();
    }
    expect(await sameContent(out, reference)).toBe(true);
  });
});

describe('tables after the data (everything before the map is spilled, then read back)', () => {
  it.each([
    {
      what: 'vdi with its block map at the end',
      format: 'vdi' as const,
      qemu: 'vdi',
      move: (b: Buffer): Buffer => {
        const at = b.readUInt32LE(340);
        const blocks = b.readUInt32LE(384);
        const map = Buffer.from(b.subarray(at, at + blocks * 4));
        const end = Math.ceil(b.length / 512) * 512;
        const out = Buffer.concat([b, Buffer.alloc(end - b.length), map]);
        b.fill(0xee, at, at + blocks * 4);
        out.fill(0xee, at, at + blocks * 4);
        out.writeUInt32LE(end, 340);
        return out;
      },
    },
    {
      what: 'vmdk with its grain directory at the end (grain tables behind it)',
      format: 'vmdk' as const,
      qemu: 'vmdk',
      move: (b: Buffer): Buffer => {
        const gd = Number(b.readBigUInt64LE(56)) * 512;
        const gtes = b.readUInt32LE(44);
        const grains = Math.ceil(Number(b.readBigUInt64LE(12)) / Number(b.readBigUInt64LE(20)));
        const dir = Buffer.from(b.subarray(gd, gd + Math.ceil(grains / gtes) * 4));
        const end = Math.ceil(b.length / 512) * 512;
        const out = Buffer.concat([b, Buffer.alloc(end - b.length), dir]);
        out.writeBigUInt64LE(BigInt(end / 512), 56);
        return out;
      },
    },
  ])('$what converts from a stream', async (row) => {
    const raw = await makeRawImage(join(tmp.dir, `moved-${row.format}.raw`), 6 * MiB, [
      { offset: 0, length: 300_000, seed: 9 },
      { offset: 3 * MiB, length: 2 * MiB, seed: 10 },
    ]);
    const original = join(tmp.dir, `moved-${row.format}.orig`);
    await qemuImg('convert', '-f', 'raw', '-O', row.qemu, raw, original);
    const image = join(tmp.dir, `moved-${row.format}.img`);
    await writeFile(image, row.move(await readFile(original)));
    const reference = join(tmp.dir, `moved-${row.format}.ref`);
    await qemuImg('convert', '-f', row.qemu, '-O', 'raw', image, reference);
    expect(await sameContent(reference, raw)).toBe(true);
    for (const mode of ['stream', 'local file'] as const) {
      const out = join(tmp.dir, `moved-${row.format}.${mode.replace(/ /g, '-')}.out`);
      await writeFile(out, '');
      await truncate(out, 6 * MiB);
      const fh = await open(out, 'r+');
      let stats: ConvertStats;
      try {
        stats = await convertBy(mode, row.format, image, { fd: fh.fd, kind: 'file' });
      } finally {
        await fh.close();
      }
      expect(await sameContent(out, reference)).toBe(true);
      if (mode === 'stream') expect(stats.spilledBytes).toBeGreaterThan(2 * MiB);
    }
  });
});
