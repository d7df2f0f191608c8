// SPDX-License-Identifier: Apache-2.0
/**
 * HttpSource against real servers on 127.0.0.1 (test/helpers/http-server.ts): ranges on and off,
 * redirects, basic auth, TLS with a CA generated here, dropped and stalled connections (the
 * download must resume and stay byte-identical), refused HEAD, error statuses, proxies.
 */
import { randomBytes } from 'node:crypto';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { errorCode, type CdiError } from '../../common/errors.js';
import { createLogger } from '../../common/logger.js';
import { HttpSource, type HttpSourceOptions } from '../../importer/sources/http.js';
import {
  startTestHttpServer,
  startTestProxy,
  type TestHttpServer,
  type TestHttpServerOptions,
} from '../helpers/http-server.js';
import { createTestTls, type TestTls } from '../helpers/tls.js';
import { consume, download } from '../helpers/source-read.js';

const DATA = randomBytes(3 * 1024 * 1024 + 123);
const FAST = { retryDelayMs: 10, maxRetries: 3 } as const;

let tls: TestTls;
const servers: TestHttpServer[] = [];
const sources: HttpSource[] = [];

beforeAll(async () => {
  tls = await createTestTls();
});
afterAll(async () => {
  await tls.cleanup();
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
  const s = new HttpSource({ ...FAST, ...options });
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

function captureLogger(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger({ component: 'test', write: (l) => void lines.push(l) }) };
}

describe('HttpSource: successful downloads are byte-identical', () => {
  it.each<{
    what: string;
    server: TestHttpServerOptions;
    path?: string;
    ranges: boolean;
    length: number | undefined;
  }>([
    { what: 'a server with Range support', server: {}, ranges: true, length: DATA.length },
    {
      what: 'a server without Range support',
      server: { ranges: false },
      ranges: false,
      length: DATA.length,
    },
    {
      what: 'a chunked answer without Content-Length',
      server: { chunked: true },
      ranges: false,
      length: undefined,
    },
    {
      what: 'a refused HEAD (403, CDI /forbidden-HEAD/)',
      server: { headStatus: 403 },
      ranges: true,
      length: DATA.length,
    },
    {
      what: 'a refused HEAD on a server without ranges',
      server: { headStatus: 405, ranges: false },
      ranges: false,
      length: DATA.length,
    },
    {
      what: 'a redirect (301, relative Location)',
      server: { redirects: { '/old.img': '/disk.img' }, redirectStatus: 301 },
      path: '/old.img',
      ranges: true,
      length: DATA.length,
    },
    {
      what: 'a weak ETag only',
      server: { etag: () => 'W/"weak"' },
      ranges: true,
      length: DATA.length,
    },
  ])('$what', async ({ server, path, ranges, length }) => {
    const s = await serve(server);
    const src = source({ url: s.url(path ?? '/disk.img') });
    const info = await src.info(new AbortController().signal);
    expect(info).toMatchObject({ length, randomAccess: ranges && length !== undefined });
    const got = await consume(await src.stream(new AbortController().signal));
    expect(got.equals(DATA)).toBe(true);
    for (const r of s.requests) expect(r.headers['user-agent']).toBe('cdi-golang-importer');
  });

  it('streams without info() first, following a redirect', async () => {
    const s = await serve({ redirects: { '/old.img': '/disk.img' } });
    const src = source({ url: s.url('/old.img') });
    expect((await consume(await src.stream(new AbortController().signal))).equals(DATA)).toBe(true);
  });

  it('sends basic auth from the access key and secret, and extra headers split at the first colon', async () => {
    const s = await serve({ basicAuth: { user: 'admin', password: 'pa:ss' } });
    const src = source({
      url: s.url('/disk.img'),
      transport: {
        accessKeyId: 'admin',
        secretKey: 'pa:ss',
        extraHeaders: ['X-Trace: a:b:c', 'X-Other:  v '],
      },
    });
    expect((await download(src)).equals(DATA)).toBe(true);
    expect(s.requests.length).toBeGreaterThanOrEqual(2);
    for (const r of s.requests) {
      expect(r.headers['x-trace']).toBe('a:b:c');
      expect(r.headers['x-other']).toBe('v');
    }
  });

  it('answers 401 as an upstream error when the credentials are wrong', async () => {
    const s = await serve({ basicAuth: { user: 'admin', password: 'password' } });
    const err = await failure(
      source({
        url: s.url('/disk.img'),
        transport: { accessKeyId: 'admin', secretKey: 'nope' },
      }).info(new AbortController().signal),
    );
    expect(err.code).toBe('CDI_UPSTREAM_HTTP');
    expect(err.message).toBe('expected status code 200, got 401. Status: 401 Unauthorized');
  });

  it('re-applies basic auth on a same-origin redirect but not across origins', async () => {
    const other = await serve({});
    const s = await serve({
      basicAuth: { user: 'u', password: 'p' },
      redirects: { '/here': '/disk.img', '/away': other.url('/disk.img') },
    });
    const transport = {
      accessKeyId: 'u',
      secretKey: 'p',
      extraHeaders: ['Authorization: Bearer leak', 'X-Keep: 1'],
    };
    expect((await download(source({ url: s.url('/here'), transport }))).equals(DATA)).toBe(true);
    expect((await download(source({ url: s.url('/away'), transport }))).equals(DATA)).toBe(true);
    expect(other.requests.length).toBeGreaterThan(0);
    for (const r of other.requests) {
      expect(r.headers.authorization).toBeUndefined();
      expect(r.headers['x-keep']).toBe('1');
    }
  });

  it('trusts a CA from the cert dir over TLS, refuses without it, and skips checks with insecureTls', async () => {
    const s = await serve({ tls: { certPem: tls.certPem, keyPem: tls.keyPem } });
    expect(
      (
        await download(source({ url: s.url('/disk.img'), transport: { certDir: tls.caDir } }))
      ).equals(DATA),
    ).toBe(true);
    const err = await failure(
      source({ url: s.url('/disk.img'), maxRetries: 0 }).info(new AbortController().signal),
    );
    expect(err.code).toBe('CDI_CONNECT_FAILED');
    expect(err.message).toContain(s.url('/disk.img'));
    expect(
      (
        await download(source({ url: s.url('/disk.img'), transport: { insecureTls: true } }))
      ).equals(DATA),
    ).toBe(true);
  });

  it('retries a flaky 503 and then succeeds', async () => {
    const s = await serve({ failFirst: { status: 503, times: 2 } });
    expect((await download(source({ url: s.url('/disk.img') }))).equals(DATA)).toBe(true);
  });

  it('logs CDI warning for a text/* content type and goes on', async () => {
    const s = await serve({ contentType: 'text/html' });
    const { lines, logger } = captureLogger();
    expect((await download(source({ url: s.url('/disk.img'), logger }))).equals(DATA)).toBe(true);
    expect(lines.join('')).toContain(
      "Unexpected content type 'text/html'. Content might not be a KubeVirt image.",
    );
  });
});

describe('HttpSource: resume after a dropped connection', () => {
  it.each([
    { what: 'one drop early in the body', dropAfterBytes: 100_000, dropTimes: 1 },
    { what: 'three drops in a row', dropAfterBytes: 700_000, dropTimes: 3 },
    // The retry budget (3) resets whenever an attempt made progress.
    {
      what: 'more drops than retries, each making progress',
      dropAfterBytes: 400_000,
      dropTimes: 6,
    },
    { what: 'a drop before any body byte', dropAfterBytes: 0, dropTimes: 1 },
  ])(
    '$what: resumes with Range + If-Range and stays byte-identical',
    async ({ dropAfterBytes, dropTimes }) => {
      const s = await serve({ dropAfterBytes, dropTimes });
      const got = await download(source({ url: s.url('/disk.img'), maxRetries: 3 }));
      expect(got.length).toBe(DATA.length);
      expect(got.equals(DATA)).toBe(true);
      const gets = s.requests.filter((r) => r.method === 'GET');
      expect(gets.length).toBe(dropTimes + 1);
      if (dropAfterBytes > 0) {
        expect(gets[1]?.headers.range).toMatch(/^bytes=\d+-$/);
        expect(gets[1]?.headers['if-range']).toBeDefined();
      }
    },
  );

  it('restarts from byte 0 when nothing was emitted yet, even without Range support', async () => {
    const s = await serve({ ranges: false, dropAfterBytes: 0 });
    expect((await download(source({ url: s.url('/disk.img') }))).equals(DATA)).toBe(true);
  });

  it.each<{ what: string; server: TestHttpServerOptions; code: string }>([
    {
      what: 'the server ignores Range',
      server: { ranges: false, dropAfterBytes: 200_000 },
      code: 'CDI_RESUME_FAILED',
    },
    {
      what: 'the ETag changed between attempts',
      server: { dropAfterBytes: 200_000, etag: (n) => `"v${n}"` },
      code: 'CDI_RESUME_FAILED',
    },
    {
      what: 'the server answers a different range than asked',
      server: { dropAfterBytes: 200_000, rangeShift: 100 },
      code: 'CDI_RESUME_FAILED',
    },
    {
      what: 'every resume attempt answers 503 (retries spent)',
      server: { dropAfterBytes: 200_000, failGet: (n) => (n >= 1 ? 503 : undefined) },
      code: 'CDI_RESUME_FAILED',
    },
  ])('fails with $code when $what, never emitting wrong bytes', async ({ server, code }) => {
    const s = await serve(server);
    const src = source({ url: s.url('/disk.img'), maxRetries: 2 });
    const signal = new AbortController().signal;
    await src.info(signal);
    const body = await src.stream(signal);
    const received: Buffer[] = [];
    const err = await failure(
      (async () => {
        for await (const c of body) received.push(c as Buffer);
      })(),
    );
    expect(err.code).toBe(code);
    const got = Buffer.concat(received);
    expect(got.equals(DATA.subarray(0, got.length))).toBe(true);
  });

  it('aborts a stalled attempt after the idle timeout and resumes', async () => {
    const s = await serve({ stallAfterBytes: 300_000 });
    const got = await download(
      source({
        url: s.url('/disk.img'),
        transport: { limits: { idleTimeoutMs: 300, stallBudgetMs: 60_000 } },
      }),
    );
    expect(got.equals(DATA)).toBe(true);
    expect(s.requests.filter((r) => r.method === 'GET')[1]?.headers.range).toBe('bytes=300000-');
  });

  it('fails on a body shorter than the announced length', async () => {
    const s = await serve({ shortBy: 10 });
    const src = source({ url: s.url('/disk.img') });
    const err = await failure(download(src));
    expect(err.code).toBe('CDI_CONTENT_LENGTH_MISMATCH');
  });
});

describe('HttpSource: errors', () => {
  it.each([
    {
      what: 'not found',
      status: 404,
      message: 'expected status code 200, got 404. Status: 404 Not Found',
      retryable: false,
    },
    {
      what: 'internal error',
      status: 500,
      message: 'expected status code 200, got 500. Status: 500 Internal Server Error',
      retryable: true,
    },
  ])('answers $status ($what) as CDI_UPSTREAM_HTTP', async ({ status, message, retryable }) => {
    const s = await serve({ status: { '/disk.img': status } });
    const err = await failure(
      source({ url: s.url('/disk.img'), maxRetries: 1 }).info(new AbortController().signal),
    );
    expect(err.code).toBe('CDI_UPSTREAM_HTTP');
    expect(err.message).toBe(message);
    expect(err.httpStatus).toBe(status);
    expect(err.retryable).toBe(retryable);
  });

  it('reports a refused connection as CDI_CONNECT_FAILED with the URL redacted', async () => {
    const s = await serve({});
    const url = `http://user:secret@127.0.0.1:${s.port}/disk.img`;
    await s.close();
    servers.splice(0);
    const err = await failure(source({ url, maxRetries: 1 }).info(new AbortController().signal));
    expect(err.code).toBe('CDI_CONNECT_FAILED');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`127.0.0.1:${s.port}/disk.img`);
    expect(err.message).not.toContain('secret');
  });

  it('cancels the transfer when the signal aborts', async () => {
    const s = await serve({ bytesPerSecond: 200_000 });
    const src = source({ url: s.url('/disk.img') });
    const ac = new AbortController();
    await src.info(ac.signal);
    const body = await src.stream(ac.signal);
    body.once('data', () => ac.abort(new Error('user cancelled')));
    const err = await failure(consume(body));
    expect(errorCode(err)).toBe('CDI_ABORTED');
  });

  it('keeps memory bounded when the consumer is slow (backpressure)', async () => {
    const big = randomBytes(32 * 1024 * 1024);
    const s = await startTestHttpServer({ files: { '/big': big } });
    servers.push(s);
    const src = source({ url: s.url('/big'), parallelConnections: 1 });
    const signal = new AbortController().signal;
    await src.info(signal);
    const body = await src.stream(signal);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Not read yet: only about one highWaterMark (plus one socket chunk) may be buffered.
    expect(body.readableLength).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect((await consume(body)).equals(big)).toBe(true);
  });
});

describe('HttpSource: readRange', () => {
  it('reads exact ranges from a server with Range support', async () => {
    const s = await serve({});
    const src = source({ url: s.url('/disk.img') });
    const signal = new AbortController().signal;
    expect((await src.info(signal)).randomAccess).toBe(true);
    for (const [offset, length] of [
      [0, 512],
      [65_536, 1_000_000],
      [DATA.length - 7, 7],
    ] as const) {
      expect(
        (await src.readRange(offset, length, signal)).equals(
          DATA.subarray(offset, offset + length),
        ),
      ).toBe(true);
    }
    const past = await failure(src.readRange(DATA.length - 1, 2, signal));
    expect(past.code).toBe('CDI_UNEXPECTED_EOF');
  });

  it('refuses a 206 that carries another range', async () => {
    const s = await serve({ rangeShift: 10 });
    const src = source({ url: s.url('/disk.img') });
    const signal = new AbortController().signal;
    await src.info(signal);
    const err = await failure(src.readRange(1000, 100, signal));
    expect(err.code).toBe('CDI_RESUME_FAILED');
  });

  it('is not offered when the server has no Range support', async () => {
    const s = await serve({ ranges: false });
    const src = source({ url: s.url('/disk.img') });
    expect((await src.info(new AbortController().signal)).randomAccess).toBe(false);
  });
});

describe('HttpSource: proxies', () => {
  it('sends plain-HTTP requests through the proxy with the importer User-Agent, and bypasses it for no_proxy', async () => {
    const proxy = await startTestProxy();
    try {
      const s = await serve({});
      const url = `http://localhost:${s.port}/disk.img`;
      expect((await download(source({ url, proxy: { httpProxy: proxy.url } }))).equals(DATA)).toBe(
        true,
      );
      expect(proxy.requests.length).toBeGreaterThan(0);
      for (const r of proxy.requests) {
        expect(r.target).toBe(url);
        expect(r.userAgent).toBe('cdi-golang-importer');
      }
      const before = proxy.requests.length;
      expect(
        (
          await download(source({ url, proxy: { httpProxy: proxy.url, noProxy: 'localhost' } }))
        ).equals(DATA),
      ).toBe(true);
      expect(proxy.requests.length).toBe(before);
    } finally {
      await proxy.close();
    }
  });

  it.each([
    {
      what: 'a CIDR in no_proxy',
      proxy: (p: string) => ({ httpProxy: p, noProxy: '10.0.0.0/8, 127.0.0.0/8' }),
    },
    {
      what: 'only https_proxy set (Go: http targets go direct)',
      proxy: (p: string) => ({ httpsProxy: p }),
    },
  ])('connects directly with $what', async ({ proxy: options }) => {
    const proxy = await startTestProxy();
    try {
      const s = await serve({});
      expect(
        (await download(source({ url: s.url('/disk.img'), proxy: options(proxy.url) }))).equals(
          DATA,
        ),
      ).toBe(true);
      expect(proxy.requests).toHaveLength(0);
      expect(s.requests.length).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it('tunnels HTTPS with CONNECT through the proxy, with proxy credentials', async () => {
    const proxy = await startTestProxy();
    try {
      const s = await serve({ tls: { certPem: tls.certPem, keyPem: tls.keyPem } });
      const proxyUrl = proxy.url.replace('http://', 'http://puser:ppass@');
      const src = source({
        url: s.url('/disk.img'),
        transport: { certDir: tls.caDir },
        proxy: { httpsProxy: proxyUrl },
      });
      expect((await download(src)).equals(DATA)).toBe(true);
      const connects = proxy.requests.filter((r) => r.method === 'CONNECT');
      expect(connects.length).toBeGreaterThan(0);
      expect(connects[0]?.target).toBe(`127.0.0.1:${s.port}`);
      expect(connects[0]?.userAgent).toBe('cdi-golang-importer');
      expect(connects[0]?.proxyAuthorization).toBe(
        `Basic ${Buffer.from('puser:ppass').toString('base64')}`,
      );
    } finally {
      await proxy.close();
    }
  });
});

describe('HttpSource: parallel ranged downloads', () => {
  const SEG = 256 * 1024;

  it.each<{ what: string; server: TestHttpServerOptions }>([
    { what: 'a healthy server', server: {} },
    {
      what: 'connections dropped mid-segment (each segment retried)',
      server: { dropAfterBytes: 100_000, dropTimes: 3 },
    },
  ])('reads segments over several connections from $what, byte-identical', async ({ server }) => {
    const s = await serve(server);
    const got = await download(
      source({ url: s.url('/disk.img'), parallelConnections: 4, segmentBytes: SEG }),
    );
    expect(got.equals(DATA)).toBe(true);
    const ranged = s.requests.filter((r) => r.method === 'GET' && r.headers.range !== undefined);
    expect(ranged.length).toBeGreaterThanOrEqual(Math.ceil(DATA.length / SEG));
    expect(new Set(ranged.map((r) => r.headers.range)).size).toBe(Math.ceil(DATA.length / SEG));
  });

  it('is faster than one connection against a per-connection rate limit', async () => {
    // 2 MiB/s per connection: one GET needs ≥ 1.5 s for 3 MiB; 8 connections about a quarter of that.
    const s = await serve({ bytesPerSecond: 2 * 1024 * 1024 });
    const timed = async (parallelConnections: number): Promise<number> => {
      const t = performance.now();
      const src = source({
        url: s.url('/disk.img'),
        parallelConnections,
        segmentBytes: 384 * 1024,
      });
      expect((await download(src)).equals(DATA)).toBe(true);
      return performance.now() - t;
    };
    const single = await timed(1);
    const parallel = await timed(8);
    expect(single).toBeGreaterThan(1_400);
    expect(parallel).toBeLessThan(single * 0.6);
  });

  it('falls back to one GET when the server announces ranges but ignores them', async () => {
    const s = await serve({ ignoreRange: true });
    const { lines, logger } = captureLogger();
    const got = await download(
      source({ url: s.url('/disk.img'), parallelConnections: 4, segmentBytes: SEG, logger }),
    );
    expect(got.equals(DATA)).toBe(true);
    expect(lines.join('')).toContain('did not honour them');
  });

  it('fails with CDI_RESUME_FAILED when the content changes between segments', async () => {
    const s = await serve({ etag: (n) => `"v${n}"` });
    const err = await failure(
      download(source({ url: s.url('/disk.img'), parallelConnections: 2, segmentBytes: SEG })),
    );
    expect(err.code).toBe('CDI_RESUME_FAILED');
  });

  it('bounds memory by connections × segment when the consumer is slow', async () => {
    const s = await serve({});
    const src = source({ url: s.url('/disk.img'), parallelConnections: 2, segmentBytes: SEG });
    const signal = new AbortController().signal;
    await src.info(signal);
    const body = await src.stream(signal);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(body.readableLength).toBeLessThanOrEqual(SEG);
    const ranged = s.requests.filter((r) => r.method === 'GET' && r.headers.range !== undefined);
    expect(ranged.length).toBeLessThanOrEqual(1 + 2 + 1);
    expect((await consume(body)).equals(DATA)).toBe(true);
  });
});
