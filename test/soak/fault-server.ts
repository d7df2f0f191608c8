// SPDX-License-Identifier: Apache-2.0
/**
 * An HTTP file server on 127.0.0.1 that misbehaves at random, from a seed: each request may be
 * answered with a dropped connection, a stall, a short read (the body ends cleanly before its
 * Content-Length), a wrong ETag on a resume, a 500, or a slow trickle. It counts what it injected,
 * by kind, for the soak's report.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

/** Kinds of fault, in the order of the report. */
export const FAULT_KINDS = ['drop', 'stall', 'short', 'wrongEtag', 'status500', 'trickle'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** A small fast PRNG (mulberry32): the same seed gives the same sequence. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options of {@link startFaultServer}. */
export interface FaultServerOptions {
  /** URL path → content. */
  readonly files: Readonly<Record<string, Buffer>>;
  readonly seed: number;
  /** Share of requests that get a fault (default 0.5). */
  readonly faultRate?: number;
  /**
   * How long a stall lasts before the server drops the connection; undefined: for ever (the
   * client's idle timeout must notice).
   */
  readonly stallMs?: number;
  /** Bytes per second of a trickle (default 2 MiB/s), over at most {@link trickleBytes}. */
  readonly trickleBytesPerSecond?: number;
  readonly trickleBytes?: number;
}

/** A running server. */
export interface FaultServer {
  readonly origin: string;
  url(path: string): string;
  /** Faults injected so far, by kind. */
  readonly injected: Record<FaultKind, number>;
  /** Requests served so far. */
  readonly requests: () => number;
  close(): Promise<void>;
}

function etagOf(data: Buffer): string {
  return `"${createHash('sha1').update(data).digest('hex').slice(0, 16)}"`;
}

/** `bytes=a-` or `bytes=a-b` → the slice, else undefined (whole file). */
function rangeOf(header: string | undefined, size: number): [number, number] | undefined {
  const m = /^bytes=(\d+)-(\d*)$/.exec(header ?? '');
  if (m === null) return undefined;
  const start = Number(m[1]);
  const end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
  return start < end ? [start, end] : undefined;
}

/** Writes `data` honouring backpressure; false when the socket went away. */
function write(res: http.ServerResponse, data: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    if (res.destroyed) {
      resolve(false);
      return;
    }
    if (res.write(data)) {
      resolve(true);
      return;
    }
    const onDrain = (): void => {
      res.off('close', onClose);
      resolve(true);
    };
    const onClose = (): void => {
      res.off('drain', onDrain);
      resolve(false);
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** Sends the body's first `cut` bytes and waits until they left; false when the peer went away. */
async function sendPrefix(res: http.ServerResponse, body: Buffer, cut: number): Promise<boolean> {
  if (!(await write(res, body.subarray(0, cut)))) return false;
  await new Promise<void>((resolve) => res.write('', () => resolve()));
  return true;
}

type BodyFault = 'drop' | 'short' | 'stall' | 'trickle';
type Sender = (
  res: http.ServerResponse,
  body: Buffer,
  cut: number,
  options: FaultServerOptions,
) => Promise<void>;

/** How each body fault sends a body (the others answer before any body). */
const SENDERS: Readonly<Record<BodyFault, Sender>> = {
  drop: async (res, body, cut) => {
    if (await sendPrefix(res, body, cut)) res.socket?.resetAndDestroy();
  },
  // A clean end (FIN) before the announced length.
  short: async (res, body, cut) => {
    if (await sendPrefix(res, body, cut)) res.socket?.end();
  },
  stall: async (res, body, cut, options) => {
    // Without stallMs the stall lasts for ever: the socket closes with the server.
    if (!(await sendPrefix(res, body, cut)) || options.stallMs === undefined) return;
    await delay(options.stallMs);
    res.socket?.destroy();
  },
  trickle: async (res, body, _cut, options) => {
    const rateBps = options.trickleBytesPerSecond ?? 2 << 20;
    const slow = Math.min(body.length, options.trickleBytes ?? 1 << 20);
    const step = Math.max(1, Math.floor(rateBps / 20));
    for (let at = 0; at < slow; at += step) {
      if (!(await write(res, body.subarray(at, Math.min(slow, at + step))))) return;
      await delay(50);
    }
    if (await write(res, body.subarray(slow))) res.end();
  },
};

function isBodyFault(fault: FaultKind | undefined): fault is BodyFault {
  return fault !== undefined && fault in SENDERS;
}

/** Starts the server on 127.0.0.1 port 0. */
export async function startFaultServer(options: FaultServerOptions): Promise<FaultServer> {
  const random = seededRandom(options.seed);
  const rate = options.faultRate ?? 0.5;
  const injected = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  const etags = new Map(Object.entries(options.files).map(([p, d]) => [p, etagOf(d)]));
  let served = 0;
  const pick = (): FaultKind | undefined =>
    random() < rate ? FAULT_KINDS[Math.floor(random() * FAULT_KINDS.length)] : undefined;

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    served++;
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const data = options.files[path];
    if (data === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    let fault = pick();
    if (req.method === 'HEAD') {
      // A HEAD can only be refused; every other fault is about a body.
      if (fault === 'status500') {
        injected.status500++;
        res.writeHead(500).end();
        return;
      }
      res
        .writeHead(200, {
          'content-length': data.length,
          'accept-ranges': 'bytes',
          etag: etags.get(path),
        })
        .end();
      return;
    }
    const range = rangeOf(req.headers.range, data.length);
    if (fault === 'wrongEtag' && range === undefined) fault = undefined;
    if (fault !== undefined) injected[fault]++;
    if (fault === 'status500') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('injected failure');
      return;
    }
    const [start, end] = range ?? [0, data.length];
    const body = data.subarray(start, end);
    res.writeHead(range === undefined ? 200 : 206, {
      'content-length': body.length,
      'accept-ranges': 'bytes',
      etag: fault === 'wrongEtag' ? `"changed-${Math.floor(random() * 1e9)}"` : etags.get(path),
      ...(range === undefined
        ? {}
        : { 'content-range': `bytes ${start}-${end - 1}/${data.length}` }),
    });
    res.flushHeaders();
    const cut = Math.floor(random() * body.length);
    if (isBodyFault(fault)) await SENDERS[fault](res, body, cut, options);
    else if (await write(res, body)) res.end();
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 2000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    url: (p) => `${origin}${p}`,
    injected,
    requests: () => served,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
