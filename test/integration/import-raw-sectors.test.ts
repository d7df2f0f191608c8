// SPDX-License-Identifier: Apache-2.0
/**
 * A raw image whose length is not a multiple of 512 (a truncated download, a short
 * Content-Length) is completed with zeros to the next sector, as `qemu-img convert` (and so the
 * Go CDI, which converts every image with it) does: the disk equals qemu-img's output, over HTTP,
 * behind gzip, from a local file, and on a block device whose stale bytes past the end are zeroed.
 */
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { runImport, type ImportJob } from '../../importer/pipeline/import.js';
import { FileSource } from '../../importer/sources/file.js';
import { HttpSource } from '../../importer/sources/http.js';
import { compressFile, makeTempDir, qemuImg, sameContent } from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';

const ODD_LENGTH = 1024 * 1024 + 100;
let tmp: { dir: string; cleanup: () => Promise<void> };
let server: TestHttpServer;
let rawPath: string;
let reference: string;

beforeAll(async () => {
  tmp = await makeTempDir('cdi-sectors-');
  rawPath = join(tmp.dir, 'odd.raw');
  // Non-zero to the last byte, so a missing or misplaced pad shows.
  await writeFile(rawPath, randomBytes(ODD_LENGTH));
  reference = join(tmp.dir, 'reference.raw');
  await qemuImg('convert', '-f', 'raw', '-O', 'raw', rawPath, reference);
  const gz = await compressFile(rawPath, join(tmp.dir, 'odd.raw.gz'), 'gzip');
  server = await startTestHttpServer({
    files: { '/odd.raw': await readFile(rawPath), '/odd.raw.gz': await readFile(gz) },
  });
});

afterAll(async () => {
  await server.close();
  await tmp.cleanup();
});

function job(source: ImportJob['source'], dest: string, kind: 'file' | 'block'): ImportJob {
  return {
    source,
    sourceKind: 'http',
    contentType: 'kubevirt',
    target: { kind, path: dest },
    filesystemOverhead: 0,
    preallocation: false,
    spillDir: tmp.dir,
    signal: AbortSignal.timeout(60_000),
    logger: silentLogger,
  };
}

describe('raw images are sized in whole 512-byte sectors, as qemu-img does', () => {
  it('qemu-img itself rounds 1 MiB + 100 bytes up to 1 MiB + 512', async () => {
    expect((await stat(reference)).size).toBe(1024 * 1024 + 512);
  });

  it.each([
    { what: 'over HTTP', path: '/odd.raw' },
    { what: 'gzip-wrapped over HTTP', path: '/odd.raw.gz' },
    { what: 'from a local file (cdi convert)', path: undefined },
  ])('$what: the disk equals qemu-img convert', async ({ path }) => {
    const dest = join(tmp.dir, `out-${path?.slice(1) ?? 'local'}.img`);
    const source =
      path === undefined
        ? new FileSource({ path: rawPath })
        : new HttpSource({ url: server.url(path), logger: silentLogger });
    const result = await runImport(job(source, dest, 'file'));
    expect(result.size).toBe(1024 * 1024 + 512);
    expect(await sameContent(dest, reference)).toBe(true);
  });

  it('on a block device, the pad overwrites stale bytes with zeros', async () => {
    const device = join(tmp.dir, 'device');
    await writeFile(device, Buffer.alloc(2 * 1024 * 1024, 0xff));
    const source = new HttpSource({ url: server.url('/odd.raw'), logger: silentLogger });
    await runImport(job(source, device, 'block'));
    const written = await readFile(device);
    const expected = await readFile(reference);
    expect(written.subarray(0, expected.length).equals(expected)).toBe(true);
    // Past the image the device keeps what it had.
    expect(written[expected.length]).toBe(0xff);
  });
});
