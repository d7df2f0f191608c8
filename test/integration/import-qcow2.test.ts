// SPDX-License-Identifier: Apache-2.0
/**
 * qcow2 through the whole import pipeline from HTTP: streamed whether or not ranges are offered,
 * inside compressed wrappers, with checksums, and refused when hostile or too large; every result
 * compared with qemu-img's output.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { parseChecksum } from '../../importer/checksum/checksum.js';
import { runImport, type ImportJob } from '../../importer/pipeline/import.js';
import { HttpSource } from '../../importer/sources/http.js';
import {
  allocatedBytes,
  compressFile,
  makeRawImage,
  makeTempDir,
  qemuConvertToRaw,
  qemuImg,
  qemuIo,
  sameContent,
  sha256File,
} from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let ranged: TestHttpServer;
let plain: TestHttpServer;
const reference: Record<string, string> = {};

beforeAll(async () => {
  tmp = await makeTempDir('cdi-qcow2-');
  const raw = await makeRawImage(join(tmp.dir, 'base.raw'), 96 * MiB + 4096 * 3, [
    { offset: 0, length: MiB },
    { offset: 30 * MiB + 512, length: 2 * MiB, seed: 4 },
    { offset: 96 * MiB, length: 4096 * 3, seed: 5 },
  ]);
  const files: Record<string, Buffer> = {};
  const add = async (name: string, path: string): Promise<void> => {
    files[`/${name}`] = await readFile(path);
    reference[name] = await qemuConvertToRaw(path, join(tmp.dir, `${name}.ref.raw`));
  };
  const v3 = join(tmp.dir, 'v3.qcow2');
  await qemuImg('convert', '-O', 'qcow2', '-o', 'cluster_size=65536', raw, v3);
  await qemuIo(v3, 'qcow2', 'write -z 30M 1M', 'discard 31M 64k');
  await add('v3.qcow2', v3);
  const zlib = join(tmp.dir, 'zlib.qcow2');
  await qemuImg('convert', '-c', '-O', 'qcow2', raw, zlib);
  await add('zlib.qcow2', zlib);
  const v2 = join(tmp.dir, 'v2.qcow2');
  await qemuImg('convert', '-O', 'qcow2', '-o', 'compat=0.10,cluster_size=4096', raw, v2);
  await add('v2.qcow2', v2);
  const gz = await compressFile(v3, `${v3}.gz`, 'gzip');
  files['/v3.qcow2.gz'] = await readFile(gz);
  reference['v3.qcow2.gz'] = reference['v3.qcow2']!;
  const backed = join(tmp.dir, 'backed.qcow2');
  await qemuImg('create', '-f', 'qcow2', '-b', v3, '-F', 'qcow2', backed);
  files['/backed.qcow2'] = await readFile(backed);
  ranged = await startTestHttpServer({ files });
  plain = await startTestHttpServer({ files, ranges: false });
});

afterAll(async () => {
  await ranged.close();
  await plain.close();
  await tmp.cleanup();
});

let n = 0;
function job(url: string, overrides: Partial<ImportJob> = {}): ImportJob {
  return {
    source: new HttpSource({ url, logger: silentLogger }),
    sourceKind: 'http',
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

describe('qcow2 imports are byte-identical to qemu-img convert -O raw', () => {
  it.each([
    {
      what: 'v3 with zero and discarded clusters, ranges offered',
      server: () => ranged,
      name: 'v3.qcow2',
      access: 'stream',
    },
    {
      what: 'zlib-compressed clusters, ranges offered',
      server: () => ranged,
      name: 'zlib.qcow2',
      access: 'stream',
    },
    {
      what: 'v2 with 4 KiB clusters, ranges offered',
      server: () => ranged,
      name: 'v2.qcow2',
      access: 'stream',
    },
    {
      what: 'v3 from a server without ranges (streamed)',
      server: () => plain,
      name: 'v3.qcow2',
      access: 'stream',
    },
    {
      what: 'zlib-compressed, streamed',
      server: () => plain,
      name: 'zlib.qcow2',
      access: 'stream',
    },
    {
      what: 'gzip-wrapped qcow2 (streamed)',
      server: () => ranged,
      name: 'v3.qcow2.gz',
      access: 'stream',
    },
  ])('$what', async ({ server, name, access }) => {
    const j = job(server().url(`/${name}`));
    const result = await runImport(j);
    expect(result.format).toBe('qcow2');
    expect(result.access).toBe(access);
    expect(await sameContent(j.target.path, reference[name]!)).toBe(true);
    expect(await allocatedBytes(j.target.path)).toBeLessThan(6 * MiB);
  });

  it('verifies a checksum of the qcow2 bytes while converting', async () => {
    const digest = await sha256File(join(tmp.dir, 'v3.qcow2'));
    const j = job(ranged.url('/v3.qcow2'), { checksum: parseChecksum(`sha256:${digest}`) });
    const result = await runImport(j);
    expect(result.access).toBe('stream');
    expect(await sameContent(j.target.path, reference['v3.qcow2']!)).toBe(true);
  });
});

describe('qcow2 refusals leave nothing behind', () => {
  it.each([
    { what: 'a backing file', name: 'backed.qcow2', code: 'CDI_IMAGE_BACKING_FILE', overrides: {} },
    {
      what: 'a virtual size above the claim',
      name: 'v3.qcow2',
      code: 'CDI_SIZE_VALIDATION',
      overrides: { requestedSize: 64 * MiB },
    },
  ])('$what', async ({ name, code, overrides }) => {
    for (const server of [ranged, plain]) {
      const j = job(server.url(`/${name}`), overrides);
      const err = await runImport(j).catch((e: unknown) => e);
      expect(err).toMatchObject({ code });
      expect(await readdir(join(j.target.path, '..')).catch(() => [])).toEqual([]);
    }
  });
});
