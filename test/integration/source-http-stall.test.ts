// SPDX-License-Identifier: Apache-2.0
/**
 * Stalled and broken servers on 127.0.0.1 against HttpSource and `cdi import`, with small limits
 * so that nothing sleeps long: a server that answers and then sends nothing, or trickles and
 * stalls again on every resume, fails the transfer with CDI_SOURCE_STALLED once the stall budget
 * is spent, however many retries are left; a HEAD that fails in any way falls through to GET at
 * once.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { errorCode, type CdiError } from '../../common/errors.js';
import { HttpSource, type HttpSourceOptions } from '../../importer/sources/http.js';
import { makeTempDir } from '../fixtures/index.js';
import {
  startTestHttpServer,
  type TestHttpServer,
  type TestHttpServerOptions,
} from '../helpers/http-server.js';
import { runCdi } from '../helpers/cdi-cli.js';
import { download } from '../helpers/source-read.js';

const DATA = randomBytes(2 * 1024 * 1024);
/** Many retries: only the stall budget can end these transfers. */
const PATIENT = { retryDelayMs: 5, maxRetries: 1000 } as const;
const LIMITS = { idleTimeoutMs: 150, stallBudgetMs: 900 } as const;

const servers: TestHttpServer[] = [];
const sources: HttpSource[] = [];
let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await makeTempDir('cdi-stall-');
});
afterAll(async () => {
  await tmp.cleanup();
});
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(options: TestHttpServerOptions): Promise<TestHttpServer> {
  const s = await startTestHttpServer({ files: { '/disk.img': DATA }, ...options });
  servers.push(s);
  return s;
}

function source(options: HttpSourceOptions): HttpSource {
  const s = new HttpSource({ ...PATIENT, transport: { limits: LIMITS }, ...options });
  sources.push(s);
  return s;
}

async function failure(p: Promise<unknown>): Promise<CdiError> {
  try {
    await p;
  } catch (err) {
    return err as CdiError;
  }
  throw new Error('expected a failure');
}

describe('a stalled server fails the transfer once the stall budget is spent', () => {
  it.each<{ what: string; server: TestHttpServerOptions; options?: Partial<HttpSourceOptions> }>([
    {
      what: 'headers, then nothing, on every GET',
      server: { stallAfterBytes: 0, stallTimes: Infinity },
    },
    {
      what: 'a trickle, then a stall, on every resume (progress does not restart the count)',
      server: { stallAfterBytes: 64 * 1024, stallTimes: Infinity },
    },
    {
      what: 'parallel ranged reads that stall',
      server: { stallAfterBytes: 0, stallTimes: Infinity },
      options: { parallelConnections: 4, segmentBytes: 256 * 1024 },
    },
    {
      what: 'a server without ranges (every retry starts again from byte 0)',
      server: { ranges: false, stallAfterBytes: 0, stallTimes: Infinity },
    },
  ])('$what', async ({ server, options }) => {
    const s = await serve(server);
    const err = await failure(download(source({ url: s.url('/disk.img'), ...options })));
    expect(errorCode(err)).toBe('CDI_SOURCE_STALLED');
    expect(err.message).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+\/disk\.img stalled: .* without progress \(\d+ stalls?; idle timeout 150 ms, stall budget 900 ms\); last: no data from .* for \d+ ms$/,
    );
    // More than one attempt was made: a stall is retried until the budget is spent.
    expect(s.requests.filter((r) => r.method === 'GET').length).toBeGreaterThan(1);
  });

  it('a single stall is retried and the download completes byte-identical', async () => {
    const s = await serve({ stallAfterBytes: 300_000 });
    const got = await download(source({ url: s.url('/disk.img') }));
    expect(got.equals(DATA)).toBe(true);
    expect(s.requests.filter((r) => r.method === 'GET')[1]?.headers.range).toBe('bytes=300000-');
  });
});

describe('a server that accepts connections and never answers', () => {
  let silent: Server;
  const sockets = new Set<Socket>();
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('fails info() with CDI_SOURCE_STALLED and no unhandled error', async () => {
    silent = createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const src = source({ url: `http://127.0.0.1:${port}/disk.img` });
    const err = await failure(src.info(new AbortController().signal));
    expect(errorCode(err)).toBe('CDI_SOURCE_STALLED');
    expect(err.message).toMatch(/stalled: .* without progress/);
    // HEAD, then the GET probe, in every attempt.
    expect(sockets.size).toBeGreaterThanOrEqual(2);
  });
});

describe('a HEAD that fails falls through to GET at once', () => {
  it.each<{ what: string; server: TestHttpServerOptions }>([
    { what: 'HEAD answers 500', server: { headStatus: 500 } },
    { what: 'HEAD answers 503', server: { headStatus: 503 } },
    { what: 'HEAD never answers', server: { stallHead: true } },
  ])('$what: one HEAD, then the ranged GET probe', async ({ server }) => {
    const s = await serve(server);
    const got = await download(source({ url: s.url('/disk.img') }));
    expect(got.equals(DATA)).toBe(true);
    const methods = s.requests.map((r) => `${r.method} ${r.headers.range ?? ''}`.trim());
    expect(methods.slice(0, 2)).toEqual(['HEAD', 'GET bytes=0-0']);
  });
});

describe('cdi import against a stalled server', () => {
  it('exits non-zero with one line naming the stall, and leaves no file', async () => {
    const s = await serve({ stallAfterBytes: 0, stallTimes: Infinity });
    const dest = join(tmp.dir, 'stalled.img');
    const r = await runCdi([
      'import',
      '--source',
      s.url('/disk.img'),
      '--dest',
      dest,
      '--idle-timeout',
      '150ms',
      '--stall-budget',
      '900ms',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(
      /^cdi import: Unable to process data: http:\/\/127\.0\.0\.1:\d+\/disk\.img stalled: .* without progress/,
    );
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('refuses a malformed --idle-timeout', async () => {
    const r = await runCdi([
      'import',
      '--source',
      'http://127.0.0.1:9/x',
      '--dest',
      join(tmp.dir, 'x'),
      '--idle-timeout',
      'soon',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--idle-timeout: "soon" is not a duration/);
  });
});

describe('cdi importer (the pod) against a stalled server', () => {
  it('reads CDI_IDLE_TIMEOUT and CDI_STALL_BUDGET and writes the stall as its termination message', async () => {
    const s = await serve({ stallAfterBytes: 0, stallTimes: Infinity });
    const data = join(tmp.dir, 'pod-data');
    await mkdir(data);
    const log = join(tmp.dir, 'termination-log');
    const r = await runCdi(['importer'], {
      IMPORTER_SOURCE: 'http',
      IMPORTER_ENDPOINT: s.url('/disk.img'),
      CDI_DATA_DIR: data,
      CDI_BLOCK_DEVICE: join(tmp.dir, 'no-block-device'),
      CDI_TERMINATION_LOG: log,
      CDI_METRICS_ADDRESS: 'off',
      CDI_IDLE_TIMEOUT: '150ms',
      CDI_STALL_BUDGET: '0.9',
    });
    expect(r.code).toBe(1);
    expect(await readFile(log, 'utf8')).toMatch(
      /^Unable to process data: http:\/\/127\.0\.0\.1:\d+\/disk\.img stalled: .* without progress \(\d+ stalls?; idle timeout 150 ms, stall budget 900 ms\)/,
    );
    expect(existsSync(join(data, 'disk.img'))).toBe(false);
  });

  it('refuses malformed limits, naming the variable', async () => {
    const log = join(tmp.dir, 'termination-log-bad');
    const r = await runCdi(['importer'], {
      IMPORTER_ENDPOINT: 'http://127.0.0.1:9/x',
      CDI_TERMINATION_LOG: log,
      CDI_METRICS_ADDRESS: 'off',
      CDI_IDLE_TIMEOUT: '0s',
      CDI_STALL_BUDGET: 'forever',
    });
    expect(r.code).toBe(1);
    const text = await readFile(log, 'utf8');
    expect(text).toContain('CDI_IDLE_TIMEOUT: "0s" must be longer than 0');
    expect(text).toContain('CDI_STALL_BUDGET: "forever" is not a duration');
  });
});
