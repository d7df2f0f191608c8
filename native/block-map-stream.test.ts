// SPDX-License-Identifier: Apache-2.0
// The VDI/VHD/VHDX/VMDK stream converter's lifecycle: an abort mid-stream rejects with
// CDI_ABORTED and leaves no spill file; a stream that ends inside a grain is refused.
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { makeRawImage, makeTempDir, qemuImg } from '../test/fixtures/index.js';
import { createImageStreamConverter } from './index.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let raw: string;

beforeAll(async () => {
  tmp = await makeTempDir('cdi-image-stream-');
  raw = await makeRawImage(join(tmp.dir, 'base.raw'), 8 * MiB, [
    { offset: 0, length: 6 * MiB, seed: 1 },
  ]);
});

afterAll(async () => {
  await tmp.cleanup();
});

describe('image stream converter lifecycle', () => {
  it('rejects with CDI_ABORTED when aborted mid-stream and deletes its spill file', async () => {
    const image = join(tmp.dir, 'abort.vhdx');
    await qemuImg('convert', '-f', 'raw', '-O', 'vhdx', raw, image);
    const spillDir = join(tmp.dir, 'spill');
    await import('node:fs/promises').then((fs) => fs.mkdir(spillDir));
    const out = join(tmp.dir, 'abort.out');
    await writeFile(out, '');
    await truncate(out, 8 * MiB);
    const fh = await open(out, 'r+');
    const controller = new AbortController();
    try {
      const sink = createImageStreamConverter('vhdx', {
        target: { fd: fh.fd, kind: 'file' },
        spillDir,
        signal: controller.signal,
      });
      let seen = 0;
      const input = createReadStream(image, { highWaterMark: 256 * 1024 });
      input.on('data', (chunk: string | Buffer) => {
        seen += chunk.length;
        // Past the metadata (the first ~4 MiB are spilled), inside the data blocks.
        if (seen >= 5 * MiB && !controller.signal.aborted) controller.abort();
      });
      await expect(pipeline(input, sink)).rejects.toBeDefined();
      await expect(sink.result).rejects.toMatchObject({ code: 'CDI_ABORTED' });
      // _destroy closes the spill file after the running chunks finish.
      if (!sink.closed) await new Promise<void>((resolve) => sink.once('close', () => resolve()));
      expect(await readdir(spillDir)).toEqual([]);
    } finally {
      await fh.close();
    }
  });

  it('refuses a streamOptimized vmdk that ends inside a grain', async () => {
    const image = join(tmp.dir, 'cut.vmdk');
    await qemuImg(
      'convert',
      '-f',
      'raw',
      '-O',
      'vmdk',
      '-o',
      'subformat=streamOptimized',
      raw,
      image,
    );
    const bytes = await readFile(image);
    const firstGrain = Number(bytes.readBigUInt64LE(64)) * 512;
    const out = join(tmp.dir, 'cut.out');
    await writeFile(out, '');
    const fh = await open(out, 'r+');
    try {
      const sink = createImageStreamConverter('vmdk', {
        target: { fd: fh.fd, kind: 'file' },
        spillDir: tmp.dir,
        prepareTarget: (info) => fh.truncate(info.virtualSize),
      });
      await pipeline(Readable.from([bytes.subarray(0, firstGrain + 3000)]), sink).catch(
        () => undefined,
      );
      await expect(sink.result).rejects.toMatchObject({
        code: 'CDI_IMAGE_INVALID',
        message: expect.stringMatching(
          /vmdk stream ends inside the grain at offset \d+/,
        ) as unknown,
      });
    } finally {
      await fh.close();
    }
  });
});
