// SPDX-License-Identifier: Apache-2.0
// The built CLI on VDI, VHD, VHDX and VMDK images: `cdi import` of a VDI and `cdi info --json` of
// each format, plain and gzip-compressed, checked against qemu-img (needs `npm run build:ts`).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compressFile,
  makeRawImage,
  makeTempDir,
  qemuImg,
  sameContent,
} from '../../test/fixtures/index.js';
import { runCdi } from '../../test/helpers/cdi-cli.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let raw: string;

beforeAll(async () => {
  tmp = await makeTempDir('cdi-format-cli-');
  raw = await makeRawImage(join(tmp.dir, 'base.raw'), 5 * MiB + 512, [
    { offset: 4096, length: 200_000, seed: 1 },
    { offset: 5 * MiB, length: 512, seed: 2 },
  ]);
});

afterAll(async () => {
  await tmp.cleanup();
});

describe('cdi CLI on vdi, vhd, vhdx and vmdk', () => {
  it('cdi import --source file.vdi --dest out.img writes what qemu-img convert -O raw writes', async () => {
    const vdi = join(tmp.dir, 'disk.vdi');
    await qemuImg('convert', '-f', 'raw', '-O', 'vdi', raw, vdi);
    const reference = join(tmp.dir, 'vdi.ref');
    await qemuImg('convert', '-f', 'vdi', '-O', 'raw', vdi, reference);
    const out = join(tmp.dir, 'out.img');
    const run = await runCdi(['import', '--source', vdi, '--dest', out]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(await sameContent(out, reference)).toBe(true);
  });

  it.each([
    { what: 'dynamic vhd', qemu: 'vpc', options: 'subformat=dynamic', format: 'vhd' },
    { what: 'gzip-compressed vdi', qemu: 'vdi', options: 'static=off', format: 'vdi', gzip: true },
    { what: 'vhdx', qemu: 'vhdx', options: 'subformat=dynamic', format: 'vhdx' },
    {
      what: 'gzip-compressed vhdx',
      qemu: 'vhdx',
      options: 'subformat=dynamic',
      format: 'vhdx',
      gzip: true,
    },
    {
      what: 'gzip-compressed fixed vhd',
      qemu: 'vpc',
      options: 'subformat=fixed',
      format: 'vhd',
      gzip: true,
    },
    { what: 'fixed vhd', qemu: 'vpc', options: 'subformat=fixed', format: 'vhd' },
    {
      what: 'streamOptimized vmdk',
      qemu: 'vmdk',
      options: 'subformat=streamOptimized',
      format: 'vmdk',
    },
  ])('cdi info --json reports the virtual size qemu-img info reports for a $what', async (row) => {
    const image = join(tmp.dir, `info-${row.qemu}-${row.options}.img`);
    await qemuImg('convert', '-f', 'raw', '-O', row.qemu, '-o', row.options, raw, image);
    const qemu = JSON.parse(await qemuImg('info', '-f', row.qemu, '--output=json', image)) as {
      'virtual-size': number;
    };
    const gzip = 'gzip' in row && row.gzip;
    const path = gzip ? await compressFile(image, `${image}.gz`, 'gzip') : image;
    const run = await runCdi(['info', path, '--json']);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      format: row.format,
      'virtual-size': qemu['virtual-size'],
      compression: gzip ? ['gzip'] : [],
    });
  });
});
