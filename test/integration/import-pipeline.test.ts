// SPDX-License-Identifier: Apache-2.0
/**
 * The import pipeline end to end against a real HTTP server on 127.0.0.1: every compression,
 * sparse output, resume after a dropped connection, checksums, size limits and archives.
 */
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pack } from 'tar-stream';
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
  sameContent,
  sha256File,
  type CompressorName,
} from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';

const MiB = 1024 * 1024;
const IMAGE_SIZE = 64 * MiB;
const DATA = [
  { offset: 0, length: 2 * MiB },
  { offset: 20 * MiB + 4096, length: 3 * MiB, seed: 2 },
  { offset: IMAGE_SIZE - MiB, length: MiB, seed: 3 },
];

let tmp: { dir: string; cleanup: () => Promise<void> };
let server: TestHttpServer;
let rawPath: string;
const files: Record<string, Buffer> = {};

beforeAll(async () => {
  tmp = await makeTempDir('cdi-pipeline-');
  rawPath = await makeRawImage(join(tmp.dir, 'disk.raw'), IMAGE_SIZE, DATA);
  files['/disk.raw'] = await readFile(rawPath);
  for (const name of ['gzip', 'xz', 'zstd', 'lz4', 'bzip2'] as const) {
    const out = await compressFile(rawPath, join(tmp.dir, `disk.raw.${name}`), name);
    files[`/disk.raw.${name}`] = await readFile(out);
  }
  // Nested: gzip inside xz, as some mirrors republish archives.
  const nested = await compressFile(
    join(tmp.dir, 'disk.raw.gzip'),
    join(tmp.dir, 'disk.raw.gz.xz'),
    'xz',
  );
  files['/disk.raw.gz.xz'] = await readFile(nested);
  server = await startTestHttpServer({ files });
});

afterAll(async () => {
  await server.close();
  await tmp.cleanup();
});

let counter = 0;
function job(url: string, overrides: Partial<ImportJob> = {}): ImportJob {
  const dest = join(tmp.dir, `out-${++counter}`, 'disk.img');
  return {
    source: new HttpSource({ url, logger: silentLogger, retryDelayMs: 10 }),
    sourceKind: 'http',
    contentType: 'kubevirt',
    target: { kind: 'file', path: dest },
    filesystemOverhead: 0,
    preallocation: false,
    spillDir: tmp.dir,
    signal: AbortSignal.timeout(60_000),
    logger: silentLogger,
    ...overrides,
  };
}

function destOf(j: ImportJob): string {
  return j.target.path;
}

describe('raw images over HTTP', () => {
  it.each([
    { what: 'plain raw', path: '/disk.raw', compressions: [] },
    ...(['gzip', 'xz', 'zstd', 'lz4', 'bzip2'] as CompressorName[]).map((c) => ({
      what: `${c}-compressed raw`,
      path: `/disk.raw.${c}`,
      compressions: [c],
    })),
    { what: 'gzip inside xz', path: '/disk.raw.gz.xz', compressions: ['xz', 'gzip'] },
  ])('$what is imported byte-identical and sparse', async ({ path, compressions }) => {
    const j = job(server.url(path));
    const result = await runImport(j);
    expect(result.format).toBe('raw');
    expect(result.compressions).toEqual(compressions);
    expect(result.size).toBe(IMAGE_SIZE);
    expect(await sameContent(destOf(j), rawPath)).toBe(true);
    // 6 MiB of data: the zero runs stayed holes (allow filesystem block rounding).
    expect(await allocatedBytes(destOf(j))).toBeLessThan(8 * MiB);
  });

  it('works with a server that ignores ranges and sends chunked bodies', async () => {
    const plain = await startTestHttpServer({ files, ranges: false, chunked: true });
    try {
      const j = job(plain.url('/disk.raw.zstd'));
      await runImport(j);
      expect(await sameContent(destOf(j), rawPath)).toBe(true);
    } finally {
      await plain.close();
    }
  });

  it('resumes a dropped connection with a Range request and stays byte-identical', async () => {
    const flaky = await startTestHttpServer({ files, dropAfterBytes: 5 * MiB + 123, dropTimes: 2 });
    try {
      const j = job(flaky.url('/disk.raw.gzip'), {
        checksum: parseChecksum(`sha256:${await sha256File(join(tmp.dir, 'disk.raw.gzip'))}`),
      });
      await runImport(j);
      expect(await sameContent(destOf(j), rawPath)).toBe(true);
      const ranged = flaky.requests.filter(
        (r) => r.method === 'GET' && r.headers.range !== undefined,
      );
      expect(ranged.length).toBeGreaterThanOrEqual(1);
    } finally {
      await flaky.close();
    }
  });
});

describe('checksums', () => {
  it('accepts a matching sha256 of the transferred (compressed) bytes', async () => {
    const digest = await sha256File(join(tmp.dir, 'disk.raw.xz'));
    const j = job(server.url('/disk.raw.xz'), { checksum: parseChecksum(`sha256:${digest}`) });
    await runImport(j);
    expect(await sameContent(destOf(j), rawPath)).toBe(true);
  });

  it('fails a mismatch with both digests and leaves no disk image behind', async () => {
    const wrong = 'f'.repeat(64);
    const j = job(server.url('/disk.raw.zstd'), { checksum: parseChecksum(`sha256:${wrong}`) });
    const err = await runImport(j).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CDI_CHECKSUM_MISMATCH' });
    expect(String((err as Error).message)).toMatch(
      /checksum mismatch: expected sha256:f{64}, calculated sha256:[0-9a-f]{64}/,
    );
    expect(await readdir(join(destOf(j), '..'))).toEqual([]);
  });
});

describe('sizes', () => {
  it('refuses an uncompressed image larger than the claim before writing, naming both sizes', async () => {
    const j = job(server.url('/disk.raw'), { requestedSize: 32 * MiB });
    const err = await runImport(j).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CDI_SIZE_VALIDATION' });
    expect((err as Error).message).toMatch(/64Mi .* exceeds available space 32Mi/);
    expect(await readdir(join(destOf(j), '..'))).toEqual([]);
  });

  it('stops a compressed image that grows past the claim and removes the partial file', async () => {
    const j = job(server.url('/disk.raw.gzip'), { requestedSize: 16 * MiB });
    const err = await runImport(j).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CDI_SIZE_VALIDATION' });
    expect(await readdir(join(destOf(j), '..'))).toEqual([]);
  });

  it('grows the image to the claim minus filesystem overhead, never shrinking it', async () => {
    const j = job(server.url('/disk.raw.lz4'), {
      requestedSize: 128 * MiB,
      filesystemOverhead: 0.06,
    });
    const result = await runImport(j);
    expect(result.size).toBe(120 * MiB); // ceil(128Mi / 1.06) rounded down to 1 MiB
    expect((await stat(destOf(j))).size).toBe(120 * MiB);
    const head = (await readFile(destOf(j))).subarray(0, IMAGE_SIZE);
    expect(head.equals(files['/disk.raw']!)).toBe(true);
  });
});

describe('errors', () => {
  it('reports a 404 in CDI words', async () => {
    const j = job(server.url('/missing.img'));
    await expect(runImport(j)).rejects.toThrow(
      'Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found',
    );
  });

  it('refuses a corrupt compressed stream and leaves nothing', async () => {
    const corrupt = Buffer.from(files['/disk.raw.xz']!);
    corrupt.fill(0x55, 4096, 8192);
    const bad = await startTestHttpServer({ files: { '/bad.xz': corrupt } });
    try {
      const j = job(bad.url('/bad.xz'));
      await expect(runImport(j)).rejects.toMatchObject({ code: 'CDI_DECOMPRESS_FAILED' });
      expect(await readdir(join(destOf(j), '..'))).toEqual([]);
    } finally {
      await bad.close();
    }
  });

  it('refuses a VMDK whose data lives in extent files, naming them', async () => {
    const descriptor = Buffer.from(
      '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n' +
        '# Extent description\nRW 131072 FLAT "disk-flat.vmdk" 0\n',
    );
    const srv = await startTestHttpServer({ files: { '/disk.vmdk': descriptor } });
    try {
      await expect(runImport(job(srv.url('/disk.vmdk')))).rejects.toThrow(/disk-flat\.vmdk/);
    } finally {
      await srv.close();
    }
  });
});

describe('archives', () => {
  async function tarOf(
    entries: ReadonlyArray<{
      name: string;
      body?: string;
      type?: 'file' | 'symlink' | 'directory';
      linkname?: string;
    }>,
  ): Promise<Buffer> {
    const p = pack();
    for (const e of entries) {
      p.entry(
        {
          name: e.name,
          type: e.type ?? 'file',
          ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
        },
        e.body ?? '',
      );
    }
    p.finalize();
    const chunks: Buffer[] = [];
    for await (const c of p) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  it('extracts a gzip-compressed tar into the target directory', async () => {
    const tar = await tarOf([
      { name: 'a.txt', body: 'alpha' },
      { name: 'dir', type: 'directory' },
      { name: 'dir/b.txt', body: 'beta' },
      { name: 'link', type: 'symlink', linkname: 'dir/b.txt' },
    ]);
    const tarPath = join(tmp.dir, 'good.tar');
    await writeFile(tarPath, tar);
    const gz = await readFile(await compressFile(tarPath, `${tarPath}.gz`, 'gzip'));
    const srv = await startTestHttpServer({ files: { '/good.tar.gz': gz } });
    try {
      const dir = join(tmp.dir, 'archive-ok');
      const result = await runImport({
        ...job(srv.url('/good.tar.gz')),
        contentType: 'archive',
        target: { kind: 'dir', path: dir },
      });
      expect(result.format).toBe('archive');
      expect((await readdir(dir)).sort()).toEqual(['a.txt', 'dir', 'link']);
      expect(await readFile(join(dir, 'link'), 'utf8')).toBe('beta');
    } finally {
      await srv.close();
    }
  });

  it.each([
    {
      what: 'a parent-directory path',
      entries: [
        { name: 'ok.txt', body: 'x' },
        { name: '../evil.txt', body: 'x' },
      ],
      code: 'CDI_ARCHIVE_PATH_ESCAPE',
    },
    {
      what: 'an absolute path',
      entries: [{ name: '/tmp/evil.txt', body: 'x' }],
      code: 'CDI_ARCHIVE_PATH_ESCAPE',
    },
    {
      what: 'a write through an escaping symlink',
      entries: [
        { name: 'esc', type: 'symlink' as const, linkname: '../../' },
        { name: 'esc/evil.txt', body: 'x' },
      ],
      code: 'CDI_ARCHIVE_UNSAFE_ENTRY',
    },
  ])('refuses $what and writes nothing', async ({ entries, code }) => {
    const tar = await tarOf(entries);
    const srv = await startTestHttpServer({ files: { '/bad.tar': tar } });
    try {
      const dir = join(tmp.dir, `archive-bad-${++counter}`);
      const err = await runImport({
        ...job(srv.url('/bad.tar')),
        contentType: 'archive',
        target: { kind: 'dir', path: dir },
      }).catch((e: unknown) => e);
      expect(err, String(err)).toMatchObject({ code });
      expect(await readdir(dir)).toEqual([]);
      await expect(stat(join(tmp.dir, 'evil.txt'))).rejects.toThrow();
    } finally {
      await srv.close();
    }
  });
});
