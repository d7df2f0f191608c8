// SPDX-License-Identifier: Apache-2.0
// Every input the fuzzer once crashed on (native/fuzz/regressions) goes through the addon's
// converters and either converts or fails with a CdiError code; never a crash or a raw error.
import { readdirSync } from 'node:fs';
import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, expect, it } from 'vitest';

import {
  convertImageFile,
  convertImageRanged,
  createImageStreamConverter,
  type BlockMapFormat,
  type RangeReader,
} from './index.js';
import { makeImage, makeTempDir, qemuRaw, sameBytes } from './test-helpers/qemu-images.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'fuzz', 'regressions');
const FILES = readdirSync(dir)
  .filter((f) => !f.startsWith('.'))
  .map((file) => ({ file }));

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTempDir('cdi-native-fuzzreg-');
});
afterAll(async () => {
  await tmp.cleanup();
});

async function settle(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && code.startsWith('CDI_')
      ? 'cdi-error'
      : `raw: ${String(err)}`;
  }
}

it.each(FILES)('$file converts or fails with a CdiError in every mode', async ({ file }) => {
  const path = join(dir, file);
  const bytes = await readFile(path);
  const out = join(tmp.dir, `${file}.raw`);
  await writeFile(out, '');
  await truncate(out, 1024 * 1024);
  const fh = await open(out, 'r+');
  const target = { fd: fh.fd, kind: 'file' as const };
  const reader: RangeReader = {
    size: bytes.length,
    read: (offset, length) => {
      if (offset < 0 || length < 0 || offset + length > bytes.length) {
        return Promise.reject(new RangeError(`read outside the image: ${offset}+${length}`));
      }
      return Promise.resolve(Buffer.from(bytes.subarray(offset, offset + length)));
    },
  };
  try {
    expect(await settle(convertImageFile('qcow2', path, { target }))).not.toMatch(/^raw/);
    expect(await settle(convertImageRanged('qcow2', reader, { target }))).not.toMatch(/^raw/);
    const sink = createImageStreamConverter('qcow2', { target, spillDir: tmp.dir });
    await settle(pipeline(Readable.from([bytes]), sink));
    expect(await settle(sink.result)).not.toMatch(/^raw/);
  } finally {
    await fh.close();
  }
});

const IMAGE_CASES = FILES.flatMap(({ file }) =>
  (['vdi', 'vhd', 'vmdk'] as const).map((format: BlockMapFormat) => ({ file, format })),
);

it.each(IMAGE_CASES)(
  '$file converts or fails with a CdiError as $format in every mode',
  async ({ file, format }) => {
    const path = join(dir, file);
    const bytes = await readFile(path);
    const out = join(tmp.dir, `${file}.${format}.raw`);
    await writeFile(out, '');
    const fh = await open(out, 'r+');
    const target = { fd: fh.fd, kind: 'file' as const };
    // Never grow the scratch output to a hostile virtual size: refuse large disks up front.
    const prepareTarget = (info: { virtualSize: number }): Promise<void> =>
      info.virtualSize > 64 * 1024 * 1024
        ? Promise.reject(Object.assign(new Error('too large'), { code: 'CDI_SIZE_VALIDATION' }))
        : fh.truncate(info.virtualSize);
    const reader: RangeReader = {
      size: bytes.length,
      read: (offset, length) => {
        if (offset < 0 || length < 0 || offset + length > bytes.length) {
          return Promise.reject(new RangeError(`read outside the image: ${offset}+${length}`));
        }
        return Promise.resolve(Buffer.from(bytes.subarray(offset, offset + length)));
      },
    };
    try {
      const options = { target, prepareTarget };
      expect(await settle(convertImageFile(format, path, options))).not.toMatch(/^raw/);
      expect(await settle(convertImageRanged(format, reader, options))).not.toMatch(/^raw/);
      const sink = createImageStreamConverter(format, { ...options, spillDir: tmp.dir });
      await settle(pipeline(Readable.from([bytes]), sink));
      expect(await settle(sink.result)).not.toMatch(/^raw/);
    } finally {
      await fh.close();
    }
  },
);

// Found by the fuzzer (cluster-buffer-reused-across-sizes.bin): the per-thread cluster buffer
// kept the size of the first image's clusters; a later image with larger clusters overflowed it.
it('converts compressed images of growing cluster sizes one after another on the same threads', async () => {
  for (const cs of [512, 4096, 65536, 2097152]) {
    const image = await makeImage(tmp.dir, `grow-${cs}`, {
      what: `${cs}`,
      options: `compat=1.1,cluster_size=${cs}`,
      size: '6M',
      io: ['write -P 0xab 0 5M'],
      compress: true,
    });
    const reference = `${image}.ref.raw`;
    await qemuRaw(image, reference);
    const out = `${image}.raw`;
    await writeFile(out, '');
    await truncate(out, 6 * 1024 * 1024);
    const fh = await open(out, 'r+');
    try {
      await convertImageFile('qcow2', image, {
        target: { fd: fh.fd, kind: 'file' },
        concurrency: 8,
      });
    } finally {
      await fh.close();
    }
    expect(await sameBytes(out, reference)).toBe(true);
  }
});
