// SPDX-License-Identifier: Apache-2.0
/**
 * One HTTP/1.1 request on a socket of its own (a download's HEAD probe and its body): the same
 * {@link Attempt} as http-attempt.ts, without undici, which is then not even loaded. The socket reads straight into buffers this module gives it
 * (`onread`), and a large read is handed to the consumer as it is, marked as handed over
 * (common/handed-over.ts), so the converter frees it once written: no copy, no per-read
 * allocation by Node, no garbage for the collector. On loopback undici's receive path cost
 * 450-580 ms of CPU per GiB, this one 140-200 ms (ADR 0034).
 *
 * Only what a download needs: `GET` or `HEAD` with `Connection: close`, a response framed by
 * Content-Length, by chunked transfer coding, or by the end of the connection; 1xx answers are
 * skipped. Redirects, status checks, resumption and idle watching stay with the callers
 * (http-resume.ts, http-exchange.ts). Proxies and ranged reads go through undici.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { connect as connectTcp, isIP, type OnReadOpts, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';

import { handOver } from '../../common/handed-over.js';
import { BlockPool } from '../sink/block-pool.js';
import type { Attempt, AttemptHandlers } from './http-attempt.js';
import type { TlsSettings } from './http-dispatcher.js';

/** Bytes a socket read may fill. */
const READ_BYTES = 256 * 1024;
/** A read at least this large is handed over as it is; a smaller one is copied out. */
const HAND_OVER_BYTES = READ_BYTES / 4;
/** Response head limit (undici's default maxHeaderSize is 16 KiB; servers send far less). */
const MAX_HEAD_BYTES = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Read buffers, given back by the last consumer once written: at most 32 kept (8 MiB). */
const readBuffers = new BlockPool(READ_BYTES, 32);

/** What one request needs. */
export interface SocketAttemptRequest {
  readonly url: URL;
  readonly method: 'GET' | 'HEAD';
  readonly headers: Readonly<Record<string, string>>;
  /** TLS settings for https URLs (the dispatcher's, so both paths trust the same roots). */
  readonly tls: TlsSettings;
}

/** A failure of the connection or of the response's framing, coded as undici codes them. */
function socketError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The request head; throws on header names or values that would break the framing. */
export function requestHead(
  method: 'GET' | 'HEAD',
  url: URL,
  headers: Readonly<Record<string, string>>,
): string {
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name) || /[\r\n\0]/.test(value)) {
      throw socketError(`invalid request header ${JSON.stringify(name)}`, 'UND_ERR_INVALID_ARG');
    }
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'connection') continue;
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

/** A parsed response head. */
export interface ResponseHead {
  readonly status: number;
  readonly statusText: string;
  readonly headers: IncomingHttpHeaders;
}

/** Parses `HTTP/1.x NNN text` and the header lines (without the final empty line). */
export function parseResponseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (m === null) throw socketError('malformed HTTP status line', 'HPE_INVALID_CONSTANT');
  const headers: Record<string, string | string[]> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    if (colon <= 0 || !TOKEN.test(name)) {
      throw socketError('malformed HTTP header line', 'HPE_INVALID_HEADER_TOKEN');
    }
    const value = line.slice(colon + 1).trim();
    const seen = headers[name];
    if (name === 'set-cookie') headers[name] = [...(Array.isArray(seen) ? seen : []), value];
    else headers[name] = seen === undefined ? value : `${String(seen)}, ${value}`;
  }
  return { status: Number(m[1]), statusText: m[2] ?? '', headers };
}

/** How the body ends (RFC 9112 section 6.3). */
export type Framing =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  | { readonly kind: 'close' };

/** The framing of a response to `method`. */
export function framingOf(head: ResponseHead, method: 'GET' | 'HEAD'): Framing {
  if (method === 'HEAD' || head.status === 204 || head.status === 304) return { kind: 'none' };
  const te = head.headers['transfer-encoding'];
  if (te !== undefined) {
    const last = String(te).split(',').pop()?.trim().toLowerCase();
    return last === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  }
  const cl = head.headers['content-length'];
  if (cl === undefined) return { kind: 'close' };
  const values = new Set(
    String(cl)
      .split(',')
      .map((v) => v.trim()),
  );
  const [only] = values;
  if (values.size !== 1 || only === undefined || !/^\d+$/.test(only)) {
    throw socketError('invalid Content-Length', 'UND_ERR_INVALID_ARG');
  }
  const length = Number(only);
  if (!Number.isSafeInteger(length))
    throw socketError('invalid Content-Length', 'UND_ERR_INVALID_ARG');
  return length === 0 ? { kind: 'none' } : { kind: 'length', length };
}

/**
 * Decodes chunked transfer coding across reads. `push` takes decoded bytes (views of the input,
 * valid only during the call); it returns true once the last chunk and the trailers were read.
 */
export class ChunkedDecoder {
  #state: 'size' | 'data' | 'data-end' | 'trailers' | 'done' = 'size';
  #line = '';
  #left = 0;

  /** True once the body is complete. */
  get done(): boolean {
    return this.#state === 'done';
  }

  push(input: Buffer, emit: (bytes: Buffer) => void): boolean {
    let i = 0;
    while (i < input.length && this.#state !== 'done') {
      if (this.#state === 'data') {
        const n = Math.min(this.#left, input.length - i);
        emit(input.subarray(i, i + n));
        i += n;
        this.#left -= n;
        if (this.#left === 0) this.#state = 'data-end';
        continue;
      }
      const nl = input.indexOf(0x0a, i);
      const end = nl < 0 ? input.length : nl + 1;
      this.#line += input.toString('latin1', i, end);
      i = end;
      if (this.#line.length > MAX_HEAD_BYTES) {
        throw socketError('chunk header line too long', 'HPE_CHUNK_EXTENSIONS_OVERFLOW');
      }
      if (nl < 0) break;
      const line = this.#line.replace(/\r?\n$/, '');
      this.#line = '';
      this.#onLine(line);
    }
    return this.#state === 'done';
  }

  #onLine(line: string): void {
    switch (this.#state) {
      case 'size': {
        const hex = line.split(';')[0]?.trim() ?? '';
        if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) {
          throw socketError('invalid chunk size', 'HPE_INVALID_CHUNK_SIZE');
        }
        this.#left = parseInt(hex, 16);
        this.#state = this.#left === 0 ? 'trailers' : 'data';
        return;
      }
      case 'data-end':
        if (line !== '') throw socketError('chunk data not followed by CRLF', 'HPE_STRICT');
        this.#state = 'size';
        return;
      case 'trailers':
        if (line === '') this.#state = 'done';
        return;
      default:
        return;
    }
  }
}

/** Starts one request; failures arrive through `handlers.onError`, never as a throw. */
export function startSocketAttempt(req: SocketAttemptRequest, handlers: AttemptHandlers): Attempt {
  let settled = false;
  let socket: Socket | undefined;
  let slab = readBuffers.take();
  let head: Buffer | undefined = Buffer.alloc(0);
  let framing: Framing = { kind: 'close' };
  let left = 0;
  let chunked: ChunkedDecoder | undefined;

  const settle = (err?: Error): void => {
    if (settled) return;
    settled = true;
    socket?.destroy();
    if (err === undefined) handlers.onEnd();
    else handlers.onError(err);
  };

  /** Body bytes of one read: views of the slab while `whole`, else copied out. */
  const body = (bytes: Buffer, whole: boolean): void => {
    if (framing.kind === 'chunked') {
      const c = (chunked ??= new ChunkedDecoder());
      if (c.push(bytes, (b) => handlers.onData(Buffer.from(b)))) settle();
      return;
    }
    let data = bytes;
    if (framing.kind === 'length') {
      data = bytes.subarray(0, left);
      left -= data.length;
    }
    if (data.length > 0) {
      if (whole && data.byteOffset === 0 && data.length >= HAND_OVER_BYTES) {
        // The read is the only data in its slab: hand the slab over; the next read gets a new one.
        slab = readBuffers.take();
        readBuffers.handOver(data);
        handlers.onData(data);
      } else {
        const copy = Buffer.allocUnsafeSlow(data.length);
        data.copy(copy);
        handOver(copy);
        handlers.onData(copy);
      }
    }
    if (framing.kind === 'length' && left === 0) settle();
  };

  const onHead = (bytes: Buffer): void => {
    const all: Buffer = Buffer.concat([head ?? Buffer.alloc(0), bytes]);
    let from = 0;
    for (;;) {
      const end = all.indexOf(HEAD_END, from);
      if (end < 0) {
        if (all.length - from > MAX_HEAD_BYTES) {
          throw socketError('response headers too large', 'UND_ERR_HEADERS_OVERFLOW');
        }
        head = all.subarray(from);
        return;
      }
      const parsed = parseResponseHead(all.toString('latin1', from, end));
      from = end + HEAD_END.length;
      if (parsed.status >= 100 && parsed.status < 200) continue;
      head = undefined;
      framing = framingOf(parsed, req.method);
      if (framing.kind === 'length') left = framing.length;
      handlers.onStart(parsed.status, parsed.headers, parsed.statusText);
      if (settled) return;
      if (framing.kind === 'none') {
        settle();
        return;
      }
      if (from < all.length) body(all.subarray(from), false);
      return;
    }
  };

  const onRead = (n: number, buf: Uint8Array): boolean => {
    if (settled) return false;
    const bytes = Buffer.from(buf.buffer, buf.byteOffset, n);
    try {
      if (head !== undefined) onHead(bytes);
      else body(bytes, true);
    } catch (err) {
      settle(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
    return !settled;
  };

  try {
    const request = requestHead(req.method, req.url, req.headers);
    const host = req.url.hostname.replace(/^\[(.*)\]$/, '$1');
    const tlsUrl = req.url.protocol === 'https:';
    const port = Number(req.url.port || (tlsUrl ? 443 : 80));
    const onread: OnReadOpts = { buffer: () => slab, callback: onRead };
    // Node's TLS sockets take `onread` like TCP ones; its typings only list it for TCP.
    const tlsOptions: ConnectionOptions & { onread: OnReadOpts } = {
      host,
      port,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ALPNProtocols: ['http/1.1'],
      ...req.tls,
      onread,
    };
    socket = tlsUrl ? connectTls(tlsOptions) : connectTcp({ host, port, onread });
    // Written at once: the socket holds it until the connection (and TLS) is up.
    socket.write(request);
    socket.on('error', (err) => settle(err));
    socket.on('close', () => {
      if (framing.kind === 'close' && head === undefined) settle();
      else settle(socketError('other side closed', 'UND_ERR_SOCKET'));
    });
  } catch (err) {
    queueMicrotask(() => settle(err instanceof Error ? err : new Error(String(err))));
  }

  return {
    pause() {
      socket?.pause();
    },
    resume() {
      socket?.resume();
    },
    abort(reason) {
      settle(reason);
    },
    get settled() {
      return settled;
    },
  };
}
