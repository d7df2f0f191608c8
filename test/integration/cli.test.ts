// SPDX-License-Identifier: Apache-2.0
/**
 * The `cdi` binary's contract: exit 0 and `--json` on success; exit 1 and one stderr line naming
 * the cause on failure, 2 on a usage error, 130 after SIGINT; and the importer pod entry driven
 * by CDI's env vars, writing CDI's termination message and serving the progress metric.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  allocatedBytes,
  compressFile,
  makeRawImage,
  makeTempDir,
  qemuConvertToRaw,
  qemuImg,
  sameContent,
} from '../fixtures/index.js';
import { CDI_BIN, runCdi } from '../helpers/cdi-cli.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { freePort } from '../helpers/free-port.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let server: TestHttpServer;
let raw: string;
let qcow2: string;

beforeAll(async () => {
  tmp = await makeTempDir('cdi-cli-');
  raw = await makeRawImage(join(tmp.dir, 'disk.raw'), 48 * MiB, [
    { offset: MiB, length: 3 * MiB },
    { offset: 40 * MiB, length: MiB, seed: 9 },
  ]);
  qcow2 = join(tmp.dir, 'disk.qcow2');
  await qemuImg('convert', '-O', 'qcow2', raw, qcow2);
  const xz = await compressFile(raw, `${raw}.xz`, 'xz');
  server = await startTestHttpServer({
    files: {
      '/disk.raw.xz': await readFile(xz),
      '/disk.qcow2': await readFile(qcow2),
    },
  });
});

afterAll(async () => {
  await server.close();
  await tmp.cleanup();
});

let n = 0;
const dest = (): string => join(tmp.dir, `out-${++n}`, 'disk.img');

describe('cdi import', () => {
  it('imports over HTTP, prints one JSON object, exits 0', async () => {
    const out = dest();
    const run = await runCdi([
      'import',
      '--source',
      server.url('/disk.raw.xz'),
      '--dest',
      out,
      '--json',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as {
      format: string;
      compressions: string[];
      size: number;
    };
    expect(result).toMatchObject({ format: 'raw', compressions: ['xz'], size: 48 * MiB });
    expect(await sameContent(out, raw)).toBe(true);
  });

  it.each([
    {
      what: 'a 404',
      args: () => ['--source', server.url('/nope.img')],
      line: /^cdi import: Unable to connect to http data source: expected status code 200, got 404\. Status: 404 Not Found$/,
    },
    {
      what: 'an image larger than --size',
      args: () => ['--source', server.url('/disk.qcow2'), '--size', '32Mi'],
      line: /^cdi import: Unable to process data: image virtual size 48Mi .* exceeds available space 32Mi .*$/,
    },
    {
      what: 'a wrong checksum',
      args: () => ['--source', server.url('/disk.raw.xz'), '--checksum', `md5:${'0'.repeat(32)}`],
      line: /^cdi import: Unable to process data: checksum validation failed: checksum mismatch: expected md5:0{32}, calculated md5:[0-9a-f]{32}$/,
    },
  ])('fails $what with exit 1, one stderr line, and no image', async ({ args, line }) => {
    const out = dest();
    const run = await runCdi(['import', ...args(), '--dest', out]);
    expect(run.code).toBe(1);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
    await expect(stat(out)).rejects.toThrow();
  });
  it('exits 2 on a usage error, pointing at --help', async () => {
    const run = await runCdi(['import', '--source', 'x', '--frobnicate', '--dest', dest()]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      "cdi import: unknown flag --frobnicate\nRun 'cdi import --help' for usage.\n",
    );
  });

  it.each([
    { retries: '0', lines: 1 },
    { retries: '2', lines: 2 },
  ])(
    'a refused connection with --retries $retries: $lines stderr line(s), no warning per retry',
    async ({ retries, lines }) => {
      const port = await freePort();
      const run = await runCdi([
        ...['import', '--source', `http://127.0.0.1:${port}/disk.img`, '--dest', dest()],
        ...['--retries', retries],
      ]);
      expect(run.code).toBe(1);
      const out = run.stderr.trimEnd().split('\n');
      expect(out).toHaveLength(lines);
      if (lines > 1) expect(out[0]).toMatch(/retrying \(attempt 1, next try in 1s\)/);
      expect(out.at(-1)).toMatch(
        /^cdi import: Unable to connect to http data source: .*ECONNREFUSED/,
      );
    },
  );

  it('exits 130 when interrupted with SIGINT, leaving no image', async () => {
    const slow = await startTestHttpServer({
      files: { '/disk.raw.xz': await readFile(`${raw}.xz`) },
      bytesPerSecond: 200_000,
    });
    try {
      const out = dest();
      const child = spawn(process.execPath, [
        CDI_BIN,
        ...['import', '--source', slow.url('/disk.raw.xz'), '--dest', out],
      ]);
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      // Interrupt once the transfer is under way (the server has been asked for the file).
      for (let i = 0; i < 200 && slow.requests.length === 0; i++) await delay(50);
      child.kill('SIGINT');
      // Right after the first request: the abort lands while the download is being opened.
      expect(await exited, stderr).toBe(130);
      expect(stderr).toMatch(/^cdi import: /);
      await expect(stat(out)).rejects.toThrow();
    } finally {
      await slow.close();
    }
  });
});

describe('cdi info and cdi convert', () => {
  it('reports what qemu-img info reports, with its key names', async () => {
    const run = await runCdi(['info', qcow2, '--json']);
    expect(run.code).toBe(0);
    const ours = JSON.parse(run.stdout) as Record<string, unknown>;
    const theirs = JSON.parse(await qemuImg('info', '--output=json', qcow2)) as Record<
      string,
      unknown
    >;
    for (const key of ['format', 'virtual-size', 'cluster-size', 'dirty-flag']) {
      expect(ours[key], key).toEqual(theirs[key]);
    }
  });

  it('converts qcow2 to raw byte-identical to qemu-img, sparsely', async () => {
    const out = dest();
    const run = await runCdi(['convert', qcow2, out]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const reference = await qemuConvertToRaw(qcow2, join(tmp.dir, 'reference.raw'));
    expect(await sameContent(out, reference)).toBe(true);
    expect(await allocatedBytes(out)).toBeLessThan(6 * MiB);
  });
});

describe('cdi importer (the pod entry)', () => {
  function podEnv(dataDir: string, extra: Record<string, string>): Record<string, string> {
    // The pod's filesystem exists before the entry runs (the termination log's directory too).
    mkdirSync(join(dataDir, '..'), { recursive: true });
    return {
      IMPORTER_SOURCE: 'http',
      IMPORTER_CONTENTTYPE: 'kubevirt',
      FILESYSTEM_OVERHEAD: '0',
      OWNER_UID: 'uid-1234',
      CDI_DATA_DIR: dataDir,
      CDI_BLOCK_DEVICE: join(dataDir, 'no-such-device'),
      CDI_SCRATCH_DIR: join(dataDir, 'no-scratch'),
      CDI_TERMINATION_LOG: join(dataDir, '..', `termination-${n}.log`),
      CDI_METRICS_ADDRESS: 'off',
      ...extra,
    };
  }

  it('imports into /data/disk.img, grows it to the claim, writes CDI success message', async () => {
    const dataDir = join(tmp.dir, `pod-${++n}`, 'data');
    const env = podEnv(dataDir, {
      IMPORTER_ENDPOINT: server.url('/disk.qcow2'),
      IMPORTER_IMAGE_SIZE: '64Mi',
    });
    const run = await runCdi(['importer'], env);
    expect(run.code).toBe(0);
    const message = JSON.parse(await readFile(env['CDI_TERMINATION_LOG']!, 'utf8')) as Record<
      string,
      unknown
    >;
    expect(message).toEqual({
      scratchSpaceRequired: false,
      preallocationApplied: false,
      message: 'Import Complete',
    });
    expect((await stat(join(dataDir, 'disk.img'))).size).toBe(64 * MiB);
    expect(((await stat(join(dataDir, 'disk.img'))).mode & 0o777).toString(8)).toBe('660');
  });

  it('writes the plain cause as the termination message and exits 1', async () => {
    const dataDir = join(tmp.dir, `pod-${++n}`, 'data');
    const env = podEnv(dataDir, { IMPORTER_ENDPOINT: server.url('/tinyCore.isonot.real.file') });
    const run = await runCdi(['importer'], env);
    expect(run.code).toBe(1);
    expect(await readFile(env['CDI_TERMINATION_LOG']!, 'utf8')).toBe(
      'Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found',
    );
    expect(await readdir(dataDir).catch(() => [])).toEqual([]);
  });

  it('creates a sparse blank image for source none', async () => {
    const dataDir = join(tmp.dir, `pod-${++n}`, 'data');
    const env = podEnv(dataDir, {
      IMPORTER_SOURCE: 'none',
      IMPORTER_IMAGE_SIZE: '100Mi',
      FILESYSTEM_OVERHEAD: '0.06',
    });
    const run = await runCdi(['importer'], env);
    expect(run.code).toBe(0);
    const st = await stat(join(dataDir, 'disk.img'));
    expect(st.size).toBe(94 * MiB);
    expect(st.blocks).toBe(0);
  });

  it('sends headers from secret extra-header mounts (one file per header)', async () => {
    const guarded = await startTestHttpServer({
      files: { '/disk.qcow2': await readFile(qcow2) },
      basicAuth: { user: 'admin', password: 'password' },
    });
    try {
      const dataDir = join(tmp.dir, `pod-${++n}`, 'data');
      const headersDir = join(tmp.dir, `pod-${n}`, 'extraheaders');
      mkdirSync(join(headersDir, '0'), { recursive: true });
      const basic = Buffer.from('admin:password').toString('base64');
      writeFileSync(join(headersDir, '0', 'secret'), `Authorization: Basic ${basic}\n`);
      const env = podEnv(dataDir, {
        IMPORTER_ENDPOINT: guarded.url('/disk.qcow2'),
        CDI_EXTRA_HEADERS_DIR: headersDir,
      });
      const run = await runCdi(['importer'], env);
      expect(run.code).toBe(0);
      expect(guarded.requests.every((r) => r.headers.authorization === `Basic ${basic}`)).toBe(
        true,
      );
    } finally {
      await guarded.close();
    }
  });

  it('lists every bad variable at once', async () => {
    const dataDir = join(tmp.dir, `pod-${++n}`, 'data');
    const env = podEnv(dataDir, {
      IMPORTER_ENDPOINT: server.url('/disk.qcow2'),
      PREALLOCATION: 'maybe',
      IMPORTER_CHECKSUM: 'crc:1',
      IMPORTER_SOURCE: 'ftp',
    });
    const run = await runCdi(['importer'], env);
    expect(run.code).toBe(1);
    const message = await readFile(env['CDI_TERMINATION_LOG']!, 'utf8');
    expect(message).toContain('Unknown data source: ftp');
    expect(message).toContain('PREALLOCATION');
    expect(message).toContain('IMPORTER_CHECKSUM');
  });

  it('serves kubevirt_cdi_import_progress_total over HTTPS while importing', async () => {
    const slow = await startTestHttpServer({
      files: { '/disk.raw.xz': await readFile(`${raw}.xz`) },
      bytesPerSecond: 400_000,
    });
    const port = await freePort();
    const dataDir = join(tmp.dir, `pod-${++n}`, 'data');
    const env = podEnv(dataDir, {
      IMPORTER_ENDPOINT: slow.url('/disk.raw.xz'),
      CDI_METRICS_ADDRESS: `127.0.0.1:${port}`,
    });
    const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
    try {
      const running = runCdi(['importer'], env);
      const seen: number[] = [];
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && seen.length < 3) {
        await new Promise((r) => setTimeout(r, 300));
        const res = await request(`https://127.0.0.1:${port}/metrics`, { dispatcher }).catch(
          () => undefined,
        );
        if (res === undefined) continue;
        const body = await res.body.text();
        const m = /kubevirt_cdi_import_progress_total\{ownerUID="uid-1234"\} (\d+(?:\.\d+)?)/.exec(
          body,
        );
        if (m !== null && Number(m[1]) > 0 && Number(m[1]) < 100) seen.push(Number(m[1]));
      }
      expect((await running).code).toBe(0);
      expect(seen.length).toBeGreaterThan(0);
      expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    } finally {
      await dispatcher.close();
      await slow.close();
    }
  });
});
