// SPDX-License-Identifier: Apache-2.0
// VDI, VHD, VHDX and VMDK through the whole import pipeline from local files: random access for the
// plain file, streaming when a checksum is asked for or the file is gzip/xz-compressed; each
// result compared with `qemu-img convert -f <fmt> -O raw`. Refusals keep their codes.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import {
  compressFile,
  makeRawImage,
  makeTempDir,
  qemuImg,
  sameContent,
  sha256File,
} from '../../test/fixtures/index.js';
import { FileSource } from '../sources/file.js';
import { runImport, type ImportJob } from './import.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let raw: string;

const VARIANTS = [
  { what: 'vdi dynamic', qemu: 'vdi', options: 'static=off', format: 'vdi' },
  { what: 'vdi static', qemu: 'vdi', options: 'static=on', format: 'vdi' },
  { what: 'vhd dynamic', qemu: 'vpc', options: 'subformat=dynamic', format: 'vhd' },
  { what: 'vhd fixed', qemu: 'vpc', options: 'subformat=fixed', format: 'vhd' },
  {
    what: 'vmdk monolithicSparse',
    qemu: 'vmdk',
    options: 'subformat=monolithicSparse',
    format: 'vmdk',
  },
  { what: 'vhdx dynamic', qemu: 'vhdx', options: 'subformat=dynamic', format: 'vhdx' },
  { what: 'vhdx fixed', qemu: 'vhdx', options: 'subformat=fixed,block_size=1M', format: 'vhdx' },
  {
    what: 'vmdk streamOptimized',
    qemu: 'vmdk',
    options: 'subformat=streamOptimized',
    format: 'vmdk',
  },
] as const;

beforeAll(async () => {
  tmp = await makeTempDir('cdi-import-formats-');
  raw = await makeRawImage(join(tmp.dir, 'base.raw'), 7 * MiB + 3 * 512, [
    { offset: 0, length: 300_000, seed: 1 },
    { offset: 3 * MiB - 5000, length: MiB, seed: 2 },
    { offset: 7 * MiB, length: 1536, seed: 3 },
  ]);
});

afterAll(async () => {
  await tmp.cleanup();
});

let n = 0;
function job(path: string, overrides: Partial<ImportJob> = {}): ImportJob {
  return {
    source: new FileSource({ path }),
    sourceKind: 'file',
    contentType: 'kubevirt',
    target: { kind: 'file', path: join(tmp.dir, `out-${++n}`, 'disk.img') },
    filesystemOverhead: 0,
    preallocation: false,
    spillDir: tmp.dir,
    signal: AbortSignal.timeout(60_000),
    logger: silentLogger,
    ...overrides,
  };
}

describe.each(VARIANTS)('$what imports are byte-identical to qemu-img', (v) => {
  let image: string;
  let reference: string;

  beforeAll(async () => {
    image = join(tmp.dir, `${v.qemu}-${v.options}.img`);
    await qemuImg('convert', '-f', 'raw', '-O', v.qemu, '-o', v.options, raw, image);
    reference = join(tmp.dir, `${v.qemu}-${v.options}.ref`);
    await qemuImg('convert', '-f', v.qemu, '-O', 'raw', image, reference);
    await compressFile(image, `${image}.gz`, 'gzip');
    await compressFile(image, `${image}.xz`, 'xz');
  });

  it.each([
    { how: 'local file', suffix: '', checksum: false, access: 'random' },
    { how: 'local file with a checksum', suffix: '', checksum: true, access: 'stream' },
    { how: 'gzip file', suffix: '.gz', checksum: false, access: 'stream' },
    { how: 'xz file', suffix: '.xz', checksum: false, access: 'stream' },
  ])('from a $how', async ({ suffix, checksum, access }) => {
    const path = `${image}${suffix}`;
    const j = job(
      path,
      checksum ? { checksum: { algorithm: 'sha256', hex: await sha256File(path) } } : {},
    );
    const result = await runImport(j);
    expect(result).toMatchObject({ format: v.format, access });
    expect(await sameContent(j.target.path, reference)).toBe(true);
  });
});

describe('refusals', () => {
  it('refuses a vmdk descriptor file whose data lives in extent files', async () => {
    const desc = join(tmp.dir, 'flat.vmdk');
    await writeFile(
      desc,
      '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n' +
        'createType="monolithicFlat"\n\n# Extent description\nRW 2048 FLAT "flat-flat.vmdk" 0\n',
    );
    await expect(runImport(job(desc))).rejects.toMatchObject({
      code: 'CDI_IMAGE_EXTERNAL_DATA',
      message: expect.stringContaining('flat-flat.vmdk') as unknown,
    });
    await compressFile(desc, `${desc}.gz`, 'gzip');
    await expect(runImport(job(`${desc}.gz`))).rejects.toMatchObject({
      code: 'CDI_IMAGE_EXTERNAL_DATA',
    });
  });

  it('refuses a differencing vhd (its parent is never opened)', async () => {
    const base = join(tmp.dir, 'parent.vhd');
    await qemuImg('convert', '-f', 'raw', '-O', 'vpc', raw, base);
    const child = join(tmp.dir, 'child.vhd');
    // qemu cannot create differencing VHDs: patch the footer's disk type (and checksum).
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(base);
    const patch = (footer: Buffer): void => {
      footer.writeUInt32BE(4, 60);
      footer.writeUInt32BE(0, 64);
      let sum = 0;
      for (const b of footer) sum += b;
      footer.writeUInt32BE(~sum >>> 0, 64);
    };
    patch(bytes.subarray(0, 512));
    patch(bytes.subarray(bytes.length - 512));
    await writeFile(child, bytes);
    await expect(runImport(job(child))).rejects.toMatchObject({ code: 'CDI_IMAGE_BACKING_FILE' });
  });

  it('refuses a vhdx with a log that was never replayed', async () => {
    const vhdx = join(tmp.dir, 'log.vhdx');
    await qemuImg('convert', '-f', 'raw', '-O', 'vhdx', raw, vhdx);
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(vhdx);
    // A log GUID in both headers (checksums recomputed): the log must be replayed first.
    for (const off of [64 * 1024, 128 * 1024]) {
      const h = bytes.subarray(off, off + 4096);
      h.fill(0x42, 48, 64);
      h.writeUInt32LE(0, 4);
      let crc = 0xffffffff;
      for (const byte of h) {
        crc ^= byte;
        for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
      }
      h.writeUInt32LE(~crc >>> 0, 4);
    }
    await writeFile(vhdx, bytes);
    await expect(runImport(job(vhdx))).rejects.toMatchObject({
      code: 'CDI_IMAGE_UNSUPPORTED_FEATURE',
      message: expect.stringContaining('log that needs to be replayed') as unknown,
    });
  });
});
