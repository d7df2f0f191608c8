// SPDX-License-Identifier: Apache-2.0
/**
 * The download body's own socket (importer/sources/socket-attempt.ts) against servers on loopback
 * that answer with exactly the bytes each row scripts: every framing, 1xx answers, broken
 * answers, TLS, backpressure, and the hand-over of its read buffers.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { freeHandedOver, isHandedOver } from '../../common/handed-over.js';
import type { TlsSettings } from '../../importer/sources/http-dispatcher.js';
import { startSocketAttempt } from '../../importer/sources/socket-attempt.js';
import { createTestTls, type TestTls } from '../helpers/tls.js';

const PLAIN: TlsSettings = { minVersion: 'TLSv1.2', rejectUnauthorized: true };

interface Outcome {
  readonly status?: number;
  readonly statusText?: string;
  readonly headers?: Record<string, unknown>;
  readonly body: Buffer;
  readonly chunks: Buffer[];
  readonly error?: Error & { code?: string };
  readonly request: string;
}

/** A server that records the request head and answers with `reply` (then closes, or not). */
async function scripted(
  reply: (socket: Socket) => void,
): Promise<{ server: Server; url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((socket) => {
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        requests.push(head);
        reply(socket);
      }
    });
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/disk.img?x=1`, requests };
}

/** Runs one attempt to its end; `consume` may pause it. */
async function attempt(
  url: string,
  options: {
    readonly tls?: TlsSettings;
    readonly headers?: Record<string, string>;
    readonly slow?: boolean;
    readonly method?: 'GET' | 'HEAD';
  } = {},
): Promise<Omit<Outcome, 'request'>> {
  const chunks: Buffer[] = [];
  let status: number | undefined;
  let statusText: string | undefined;
  let headers: Record<string, unknown> | undefined;
  const error = await new Promise<(Error & { code?: string }) | undefined>((resolve) => {
    const a = startSocketAttempt(
      {
        url: new URL(url),
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        tls: options.tls ?? PLAIN,
      },
      {
        onStart: (s, h, t) => {
          status = s;
          headers = h;
          statusText = t;
        },
        onData: (c) => {
          // Copied: a handed-over chunk may be freed by the consumer (here, at once below).
          chunks.push(Buffer.from(c));
          freeHandedOver(c);
          if (options.slow === true) {
            a.pause();
            setTimeout(() => a.resume(), 1);
          }
        },
        onEnd: () => resolve(undefined),
        onError: (e) => resolve(e),
      },
    );
  });
  return {
    ...(status === undefined ? {} : { status }),
    ...(statusText === undefined ? {} : { statusText }),
    ...(headers === undefined ? {} : { headers }),
    body: Buffer.concat(chunks),
    chunks,
    ...(error === undefined ? {} : { error }),
  };
}

const payload = randomBytes(3 * 1024 * 1024 + 123);
const head = (lines: string[]): string => `${lines.join('\r\n')}\r\n\r\n`;

describe('socket attempt: framings and broken answers', () => {
  const rows: {
    what: string;
    reply: (s: Socket) => void;
    status?: number;
    body?: Buffer;
    code?: string;
  }[] = [
    {
      what: 'a Content-Length body (extra bytes after it ignored)',
      reply: (s) => {
        s.write(head(['HTTP/1.1 200 OK', `Content-Length: ${payload.length}`]));
        s.write(payload);
        s.end('trailing junk');
      },
      status: 200,
      body: payload,
    },
    {
      what: 'a chunked body with extensions and trailers',
      reply: (s) => {
        s.write(head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']).slice(0, -2));
        s.write('\r\n');
        for (let off = 0; off < payload.length; off += 700_000) {
          const part = payload.subarray(off, off + 700_000);
          s.write(`${part.length.toString(16)};ext=1\r\n`);
          s.write(part);
          s.write('\r\n');
        }
        s.end('0\r\nx-trailer: 1\r\n\r\n');
      },
      status: 200,
      body: payload,
    },
    {
      what: 'a body ended by the connection',
      reply: (s) => {
        s.write(head(['HTTP/1.1 200 OK']));
        s.end(payload);
      },
      status: 200,
      body: payload,
    },
    {
      what: 'a 100 Continue before the answer',
      reply: (s) => {
        s.write(head(['HTTP/1.1 100 Continue']));
        s.end(head(['HTTP/1.1 200 OK', 'Content-Length: 5']) + 'hello');
      },
      status: 200,
      body: Buffer.from('hello'),
    },
    {
      what: 'a 204 without body',
      reply: (s) => s.write(head(['HTTP/1.1 204 No Content'])),
      status: 204,
      body: Buffer.alloc(0),
    },
    {
      what: 'a 404 with its body',
      reply: (s) => s.end(head(['HTTP/1.1 404 Not Found', 'Content-Length: 4']) + 'nope'),
      status: 404,
      body: Buffer.from('nope'),
    },
    {
      what: 'a connection closed inside the body',
      reply: (s) => {
        s.write(head(['HTTP/1.1 200 OK', `Content-Length: ${payload.length}`]));
        s.end(payload.subarray(0, 1000));
      },
      status: 200,
      code: 'UND_ERR_SOCKET',
    },
    {
      what: 'a connection closed before any answer',
      reply: (s) => s.end(),
      code: 'UND_ERR_SOCKET',
    },
    {
      what: 'a chunked body cut short',
      reply: (s) => {
        s.write(head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']));
        s.end('10\r\nabc');
      },
      status: 200,
      code: 'UND_ERR_SOCKET',
    },
    {
      what: 'a malformed status line',
      reply: (s) => s.end(head(['ICY 200 OK'])),
      code: 'HPE_INVALID_CONSTANT',
    },
    {
      what: 'a malformed chunk size',
      reply: (s) => s.end(head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']) + 'zz\r\n'),
      status: 200,
      code: 'HPE_INVALID_CHUNK_SIZE',
    },
    {
      what: 'two different Content-Lengths',
      reply: (s) => s.end(head(['HTTP/1.1 200 OK', 'Content-Length: 5', 'Content-Length: 6'])),
      code: 'UND_ERR_INVALID_ARG',
    },
    {
      what: 'endless response headers',
      reply: (s) => s.end(`HTTP/1.1 200 OK\r\n${'x-filler: 0123456789\r\n'.repeat(4000)}`),
      code: 'UND_ERR_HEADERS_OVERFLOW',
    },
  ];
  it.each(rows)('$what', async (row) => {
    const { server, url } = await scripted(row.reply);
    try {
      const r = await attempt(url);
      expect(r.status).toBe(row.status);
      if (row.code === undefined) {
        expect(r.error).toBeUndefined();
        expect(r.body.equals(row.body ?? Buffer.alloc(0))).toBe(true);
      } else {
        expect(r.error?.code).toBe(row.code);
      }
    } finally {
      server.close();
    }
  });

  it('sends GET with Host, Connection: close and the given headers; refuses injected ones', async () => {
    const { server, url, requests } = await scripted((s) =>
      s.end(head(['HTTP/1.1 200 OK', 'Content-Length: 0'])),
    );
    try {
      const r = await attempt(url, { headers: { authorization: 'Basic eDp5', range: 'bytes=5-' } });
      expect(r.error).toBeUndefined();
      const [req] = requests;
      const port = new URL(url).port;
      expect(req?.startsWith('GET /disk.img?x=1 HTTP/1.1\r\n')).toBe(true);
      expect(req).toContain(`host: 127.0.0.1:${port}\r\n`);
      expect(req).toContain('connection: close\r\n');
      expect(req).toContain('authorization: Basic eDp5\r\n');
      expect(req).toContain('range: bytes=5-\r\n');
      const bad = await attempt(url, { headers: { 'x-extra': 'a\r\nhost: evil' } });
      expect(bad.error?.code).toBe('UND_ERR_INVALID_ARG');
      expect(requests).toHaveLength(1);
    } finally {
      server.close();
    }
  });

  it('HEAD: the answer ends with its head, whatever Content-Length says', async () => {
    const { server, url, requests } = await scripted((s) =>
      s.write(head(['HTTP/1.1 200 OK', `Content-Length: ${payload.length}`, 'ETag: "x"'])),
    );
    try {
      const r = await attempt(url, { method: 'HEAD' });
      expect(r.error).toBeUndefined();
      expect(r.status).toBe(200);
      expect(r.headers?.['content-length']).toBe(String(payload.length));
      expect(r.body.length).toBe(0);
      expect(requests[0]?.startsWith('HEAD /disk.img?x=1 HTTP/1.1\r\n')).toBe(true);
    } finally {
      server.close();
    }
  });

  it('keeps every byte in order when the consumer pauses after each read', async () => {
    const { server, url } = await scripted((s) => {
      s.write(head(['HTTP/1.1 200 OK', `Content-Length: ${payload.length}`]));
      s.end(payload);
    });
    try {
      const r = await attempt(url, { slow: true });
      expect(r.error).toBeUndefined();
      expect(r.body.equals(payload)).toBe(true);
    } finally {
      server.close();
    }
  });
});

describe('socket attempt: read buffers', () => {
  it('hands large reads over and gets their memory back', async () => {
    const { server, url } = await scripted((s) => {
      s.write(head(['HTTP/1.1 200 OK', `Content-Length: ${payload.length}`]));
      s.end(payload);
    });
    try {
      const seen: { chunk: Buffer; handed: boolean }[] = [];
      await new Promise<void>((resolve, reject) => {
        startSocketAttempt(
          { url: new URL(url), method: 'GET', headers: {}, tls: PLAIN },
          {
            onStart: () => undefined,
            onData: (c) => seen.push({ chunk: c, handed: isHandedOver(c.buffer) }),
            onEnd: resolve,
            onError: reject,
          },
        );
      });
      expect(Buffer.concat(seen.map((s) => Buffer.from(s.chunk))).equals(payload)).toBe(true);
      // Every chunk is handed over: a read of its own, or a copy made for it.
      expect(seen.every((s) => s.handed)).toBe(true);
      const first = seen[0];
      expect(first).toBeDefined();
      if (first === undefined) return;
      freeHandedOver(first.chunk);
      // Freed: every view of the memory is now empty, and it is no longer handed over.
      expect(first.chunk.length).toBe(0);
      expect(isHandedOver(first.chunk.buffer)).toBe(false);
    } finally {
      server.close();
    }
  });
});

describe('socket attempt: TLS', () => {
  let tls: TestTls;
  beforeAll(async () => {
    tls = await createTestTls();
  });
  afterAll(async () => {
    await tls.cleanup();
  });

  it.each([
    { what: 'trusted through the CA', trust: true, code: undefined },
    { what: 'refused without the CA', trust: false, code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' },
  ])('https: $what', async ({ trust, code }) => {
    const server = createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, (_req, res) => {
      res.setHeader('content-length', payload.length);
      res.end(payload);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const r = await attempt(`https://127.0.0.1:${port}/disk.img`, {
        tls: trust ? { ...PLAIN, ca: [tls.caPem] } : PLAIN,
      });
      if (code === undefined) {
        expect(r.error).toBeUndefined();
        expect(r.body.equals(payload)).toBe(true);
      } else {
        expect(r.error?.code).toBe(code);
      }
    } finally {
      server.close();
    }
  });
});
