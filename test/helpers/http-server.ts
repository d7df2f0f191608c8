// SPDX-License-Identifier: Apache-2.0
/**
 * A configurable HTTP(S) file server for tests, in the spirit of CDI's file host and
 * `cdi-func-test-bad-webserver`: Range on or off, redirects, basic auth, TLS, a connection drop
 * after N body bytes, a stall, fixed status answers, a refused HEAD, flaky 503s, rate limiting and
 * ETags. It listens on 127.0.0.1 port 0; every test closes it.
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';

/** A file served: bytes in memory, or the path of a local file (large benchmark files). */
export type ServedFile = Buffer | { readonly path: string };

/** What the server does; every field is optional and may be changed between requests. */
export interface TestHttpServerOptions {
  /** URL path → content. */
  files?: Record<string, ServedFile>;
  /** Honour `Range` and announce `Accept-Ranges: bytes` (default true). */
  ranges?: boolean;
  /** Announce `Accept-Ranges: bytes` but answer every GET with the full 200 (broken caches, CDI #3543). */
  ignoreRange?: boolean;
  /** Serve ranges starting this many bytes before the one asked for (honest Content-Range). */
  rangeShift?: number;
  /** Send an ETag (default true: a strong one derived from the content); a function picks it per GET. */
  etag?: boolean | ((getIndex: number) => string);
  /** Content-Type of files (default application/octet-stream). */
  contentType?: string;
  /** URL path → Location (absolute URL or path), answered with {@link redirectStatus}. */
  redirects?: Record<string, string>;
  /** Status of redirects (default 302). */
  redirectStatus?: number;
  /** Require this basic auth on every request. */
  basicAuth?: { readonly user: string; readonly password: string };
  /** Serve HTTPS with this certificate. */
  tls?: { readonly certPem: string; readonly keyPem: string };
  /** URL path → fixed status answered to every method. */
  status?: Record<string, number>;
  /** Status answered to every HEAD (e.g. 403 like CDI's `/forbidden-HEAD/`). */
  headStatus?: number;
  /** The first `times` GETs answer `status` (flaky upstream). */
  failFirst?: { readonly status: number; readonly times: number };
  /** Status answered to the GET with this index (0-based, counted over all paths), or undefined. */
  failGet?: (getIndex: number) => number | undefined;
  /** Cut the connection after this many body bytes, on the first {@link dropTimes} GETs. */
  dropAfterBytes?: number;
  /** How many GETs are cut (default 1). */
  dropTimes?: number;
  /** Stop sending (keep the socket open) after this many body bytes of the first GET. */
  stallAfterBytes?: number;
  /** How many GETs stall (default 1; Infinity: every one). */
  stallTimes?: number;
  /** HEAD sends nothing at all (not even headers) and keeps the socket open. */
  stallHead?: boolean;
  /** Send at most this many body bytes per second. */
  bytesPerSecond?: number;
  /** Omit Content-Length (chunked encoding). */
  chunked?: boolean;
  /** HEAD announces a Content-Length this many bytes larger than the GET (chunked) then sends. */
  shortBy?: number;
}

/** One request the server saw. */
export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** A running test server. */
export interface TestHttpServer {
  /** `http(s)://127.0.0.1:PORT`. */
  readonly origin: string;
  readonly port: number;
  /** Options, mutable between requests. */
  readonly options: TestHttpServerOptions;
  /** Every request in arrival order. */
  readonly requests: RecordedRequest[];
  /** Absolute URL of a path. */
  url(path: string): string;
  /** Closes the listener and every open connection. */
  close(): Promise<void>;
}

interface Slice {
  readonly start: number;
  readonly end: number; // exclusive
}

function fileSize(file: ServedFile): number {
  return Buffer.isBuffer(file) ? file.length : statSync(file.path).size;
}

function defaultEtag(file: ServedFile): string {
  if (Buffer.isBuffer(file)) {
    return `"${createHash('sha1').update(file).digest('hex').slice(0, 16)}"`;
  }
  const st = statSync(file.path);
  return `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
}

function openSlice(file: ServedFile, slice: Slice): Readable {
  if (slice.end <= slice.start) return Readable.from([]);
  if (Buffer.isBuffer(file)) {
    return Readable.from([file.subarray(slice.start, slice.end)], { objectMode: false });
  }
  return createReadStream(file.path, {
    start: slice.start,
    end: slice.end - 1,
    highWaterMark: 1 << 20,
  });
}

/** Parses a single `bytes=` range; `undefined` = not a usable range, `null` = unsatisfiable. */
function parseRange(header: string, size: number): Slice | null | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Math.min(Number(b), size);
    return n === 0 ? null : { start: size - n, end: size };
  }
  const start = Number(a);
  const end = b === '' ? size : Math.min(Number(b) + 1, size);
  return start >= size || end <= start ? null : { start, end };
}

interface Faults {
  readonly dropAfter: number | undefined;
  readonly stallAfter: number | undefined;
  readonly bytesPerSecond: number | undefined;
}

/** Writes the body, honouring backpressure, and applies the configured faults. */
async function sendBody(res: http.ServerResponse, body: Readable, faults: Faults): Promise<void> {
  if (
    faults.dropAfter === undefined &&
    faults.stallAfter === undefined &&
    faults.bytesPerSecond === undefined
  ) {
    await pipeline(body, res);
    return;
  }
  // Headers go out even when the body stalls at once ("headers arrive, then nothing").
  res.flushHeaders();
  let sent = 0;
  const write = (chunk: Buffer): Promise<void> =>
    new Promise((resolve) => {
      if (res.write(chunk)) resolve();
      else res.once('drain', () => resolve());
    });
  const step =
    faults.bytesPerSecond === undefined
      ? Infinity
      : Math.max(1, Math.floor(faults.bytesPerSecond / 20));
  for await (const data of body) {
    let chunk = data as Buffer;
    while (chunk.length > 0) {
      if (res.destroyed) {
        body.destroy();
        return;
      }
      const limit = Math.min(faults.dropAfter ?? Infinity, faults.stallAfter ?? Infinity);
      const n = Math.min(chunk.length, step, limit - sent);
      if (n > 0) {
        await write(chunk.subarray(0, n));
        sent += n;
        chunk = chunk.subarray(n);
        if (faults.bytesPerSecond !== undefined) await delay(50);
      }
      if (sent >= (faults.dropAfter ?? Infinity)) {
        // Let the written bytes leave before the reset, so the client sees a mid-body cut.
        await new Promise<void>((resolve) => res.write('', () => resolve()));
        res.socket?.destroy();
        body.destroy();
        return;
      }
      if (sent >= (faults.stallAfter ?? Infinity)) {
        body.destroy();
        return; // never end: the client's idle watchdog must notice
      }
    }
  }
  res.end();
}

/** A short answer (no file body). */
interface ShortAnswer {
  readonly status: number;
  readonly headers?: http.OutgoingHttpHeaders;
  readonly body?: string;
}

/** Answers that do not depend on a file: auth, fixed statuses, redirects, refused HEAD, 404, 405. */
function answerWithoutFile(
  o: TestHttpServerOptions,
  req: http.IncomingMessage,
  pathname: string,
): ShortAnswer | undefined {
  const text = { 'content-type': 'text/plain' };
  if (o.basicAuth !== undefined) {
    const { user, password } = o.basicAuth;
    if (
      req.headers.authorization !== `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
    ) {
      return {
        status: 401,
        headers: { ...text, 'www-authenticate': 'Basic realm="test"' },
        body: 'unauthorized',
      };
    }
  }
  const fixed = o.status?.[pathname];
  if (fixed !== undefined) return { status: fixed, headers: text, body: `status ${fixed}` };
  const location = o.redirects?.[pathname];
  if (location !== undefined) return { status: o.redirectStatus ?? 302, headers: { location } };
  if (req.method === 'HEAD' && o.headStatus !== undefined) return { status: o.headStatus };
  if (o.files?.[pathname] === undefined) return { status: 404, headers: text, body: 'not found' };
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return { status: 405, headers: { allow: 'GET, HEAD' } };
  return undefined;
}

/** Status a GET must answer instead of the file (flaky upstream), if any. */
function failStatusOf(o: TestHttpServerOptions, getIndex: number): number | undefined {
  if (o.failFirst !== undefined && getIndex < o.failFirst.times) return o.failFirst.status;
  return o.failGet?.(getIndex);
}

/** The slice a request gets: the whole file (200), a range (206) or nothing satisfiable (null). */
function pickSlice(
  o: TestHttpServerOptions,
  req: http.IncomingMessage,
  size: number,
  etag: string | undefined,
): { slice: Slice; status: 200 | 206 } | null {
  const whole = { slice: { start: 0, end: size }, status: 200 as const };
  const range = req.headers.range;
  const ifRange = req.headers['if-range'];
  if (!(o.ranges ?? true) || o.ignoreRange === true || range === undefined) return whole;
  if (ifRange !== undefined && ifRange !== etag) return whole;
  const r = parseRange(range, size);
  if (r === null) return null;
  if (r === undefined) return whole;
  const start = Math.max(0, r.start - (o.rangeShift ?? 0));
  return { slice: { start, end: r.end }, status: 206 };
}

/** Starts a server on 127.0.0.1 port 0. */
export async function startTestHttpServer(
  options: TestHttpServerOptions = {},
): Promise<TestHttpServer> {
  const requests: RecordedRequest[] = [];
  let getCount = 0;
  const getsByPath = new Map<string, number>();

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const method = req.method ?? 'GET';
    requests.push({ method, url: req.url ?? '/', headers: req.headers });
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    const o = options;
    if (method === 'HEAD' && o.stallHead === true) return;
    const short = answerWithoutFile(o, req, pathname);
    const file = o.files?.[pathname];
    if (short !== undefined || file === undefined) {
      res.writeHead(short?.status ?? 500, short?.headers);
      res.end(short?.body);
      return;
    }
    const getIndex = method === 'GET' ? getCount++ : getCount;
    const pathGets = method === 'GET' ? (getsByPath.get(pathname) ?? 0) + 1 : 0;
    if (method === 'GET') getsByPath.set(pathname, pathGets);
    const failStatus = method === 'GET' ? failStatusOf(o, getIndex) : undefined;
    if (failStatus !== undefined) {
      res.writeHead(failStatus, { 'content-type': 'text/plain' });
      res.end('try again');
      return;
    }

    const size = fileSize(file);
    const etag =
      o.etag === false
        ? undefined
        : typeof o.etag === 'function'
          ? o.etag(getIndex)
          : defaultEtag(file);
    const headers: http.OutgoingHttpHeaders = {
      'content-type': o.contentType ?? 'application/octet-stream',
      'accept-ranges': (o.ranges ?? true) ? 'bytes' : 'none',
    };
    if (etag !== undefined) headers.etag = etag;
    const picked = pickSlice(o, req, size, etag);
    if (picked === null) {
      res.writeHead(416, { 'content-range': `bytes */${size}` });
      res.end();
      return;
    }
    const { slice, status } = picked;
    if (status === 206) headers['content-range'] = `bytes ${slice.start}-${slice.end - 1}/${size}`;
    const length = slice.end - slice.start;
    if (o.shortBy !== undefined) {
      if (method === 'HEAD') headers['content-length'] = String(length + o.shortBy);
    } else if (o.chunked !== true) {
      headers['content-length'] = String(length);
    }
    res.writeHead(status, headers);
    if (method === 'HEAD') {
      res.end();
      return;
    }
    const faults: Faults = {
      dropAfter:
        o.dropAfterBytes !== undefined && pathGets <= (o.dropTimes ?? 1)
          ? o.dropAfterBytes
          : undefined,
      stallAfter:
        o.stallAfterBytes !== undefined && pathGets <= (o.stallTimes ?? 1)
          ? o.stallAfterBytes
          : undefined,
      bytesPerSecond: o.bytesPerSecond,
    };
    sendBody(res, openSlice(file, slice), faults).catch(() => res.destroy());
  };

  const server =
    options.tls === undefined
      ? http.createServer(handle)
      : https.createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, handle);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;
  return {
    origin,
    port,
    options,
    requests,
    url: (p: string) => `${origin}${p.startsWith('/') ? p : `/${p}`}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A request a {@link TestProxy} forwarded. */
export interface ProxiedRequest {
  readonly method: string;
  /** Absolute URI (forwarded requests) or `host:port` (CONNECT). */
  readonly target: string;
  readonly userAgent: string | undefined;
  readonly proxyAuthorization: string | undefined;
}

/** A forward proxy for tests (plain-HTTP absolute-URI requests and CONNECT tunnels). */
export interface TestProxy {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly requests: ProxiedRequest[];
  close(): Promise<void>;
}

/** Starts a forward proxy on 127.0.0.1 port 0, like CDI's `cdi-func-test-proxy`. */
export async function startTestProxy(): Promise<TestProxy> {
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  const record = (req: http.IncomingMessage): void => {
    requests.push({
      method: req.method ?? '',
      target: req.url ?? '',
      userAgent: req.headers['user-agent'],
      proxyAuthorization: req.headers['proxy-authorization'],
    });
  };
  const server = http.createServer((req, res) => {
    record(req);
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = http.request(req.url ?? '', { method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connect', (req: http.IncomingMessage, client: Socket, head: Buffer) => {
    record(req);
    const [host = '', port = '443'] = (req.url ?? '').split(':');
    const up = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    sockets.add(up);
    sockets.add(client);
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
