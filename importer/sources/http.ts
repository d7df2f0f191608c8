// SPDX-License-Identifier: Apache-2.0
/**
 * The `http://`/`https://` data source (CDI `pkg/importer/http-datasource.go`), on undici.
 *
 * Sequence of phases:
 * 1. `new HttpSource(options)`: parses the URL, no I/O.
 * 2. `info()`: builds the dispatcher (CA dir, INSECURE_TLS, proxy), sends HEAD (falling back at
 *    once to `GET Range: bytes=0-0` when HEAD fails in any way, refused as by CDI's bad
 *    webserver's `/forbidden-HEAD/`, 5xx or dropped: many servers implement HEAD badly, so a
 *    HEAD failure is never retried on its own), follows redirects and remembers where they led,
 *    and learns the length, `Accept-Ranges`, the ETag and the content type.
 * 3. Either `stream()` once or any number of `readRange()` calls when `info().randomAccess`.
 *    `stream()` reads consecutive segments over several connections when ranges work
 *    (http-parallel.ts), else one GET whose dropped connections are resumed with `Range`
 *    (http-resume.ts).
 * 4. `close()`: closes the dispatcher if this source built it; idempotent.
 *
 * Every request shares one stall budget (http-limits.ts): an idle timeout per attempt and a total
 * time without progress, after which the transfer fails with `CDI_SOURCE_STALLED`.
 */
import type { Readable } from 'node:stream';

import type { Dispatcher } from 'undici';

import { CdiError, ErrorCodes, errorCode, errorMessage } from '../../common/errors.js';
import { silentLogger, type Logger } from '../../common/logger.js';
import {
  IMPORTER_USER_AGENT,
  buildDispatcher,
  buildTlsOptions,
  hasProxy,
  type DispatcherOptions,
  type ProxyOptions,
  type TlsSettings,
} from './http-dispatcher.js';
import type { HttpTransport } from './http-attempt.js';
import {
  checkRangeAnswer,
  exchange,
  learn,
  withRetries,
  type ExchangeResult,
  type Learnt,
} from './http-exchange.js';
import { StallBudget } from './http-limits.js';
import {
  basicAuthorization,
  headerValue,
  isSameOrigin,
  parseExtraHeaders,
  redactUrl,
} from './http-headers.js';
import { ParallelRangeBody } from './http-parallel.js';
import { ResumableBody, statusError } from './http-resume.js';
import type { DataSource, SourceInfo, TransportOptions } from './types.js';

/** Consecutive failed attempts tolerated before giving up (per request, or per resume point). */
export const DEFAULT_MAX_RETRIES = 5;
/** First backoff; doubles per failure, capped at 30 s. */
export const DEFAULT_RETRY_DELAY_MS = 1_000;
/**
 * highWaterMark of the download stream. Larger than undici's 64 KiB: fewer pause/resume round
 * trips per MiB on fast links, still bounded memory (measured in docs/adr/0004-http-resume.md).
 */
export const HTTP_STREAM_HIGH_WATER_MARK = 1 << 20;
/**
 * Connections of `stream()` by default: one resumable GET. On loopback and LANs one connection
 * is the cheapest in CPU (measured in docs/adr/0004-http-resume.md); parallel segments pay off
 * against per-connection rate limits and long round trips, so callers opt in.
 */
export const DEFAULT_PARALLEL_CONNECTIONS = 1;
/** Segment of a parallel ranged download: big enough to amortise a request, small to retry. */
export const DEFAULT_SEGMENT_BYTES = 8 << 20;

/** Options of {@link HttpSource}. */
export interface HttpSourceOptions {
  readonly url: string;
  readonly transport?: TransportOptions;
  readonly proxy?: ProxyOptions;
  /** CA directory of the proxy (CDI `IMPORTER_PROXY_CERT_DIR`). */
  readonly proxyCertDir?: string;
  readonly logger?: Logger;
  readonly maxRetries?: number;
  readonly retryDelayMs?: number;
  /** A dispatcher to use instead of building one (not closed by `close()`). */
  readonly dispatcher?: Dispatcher;
  /**
   * Connections for `stream()` when the server supports ranges and the length is known
   * (default 1: one resumable GET). Resources of one segment or less always use one GET.
   */
  readonly parallelConnections?: number;
  /** Segment size of parallel downloads (default 8 MiB). */
  readonly segmentBytes?: number;
}

const TEXT_CONTENT = /^text\//i;

/** See the module comment. */
export class HttpSource implements DataSource {
  private readonly url: URL;
  private readonly displayName: string;
  private readonly options: HttpSourceOptions;
  private readonly logger: Logger;
  private readonly baseHeaders: Record<string, string>;
  private readonly authorization: string | undefined;
  private dispatcher: Dispatcher | undefined;
  private dispatcherPromise: Promise<Dispatcher> | undefined;
  private tlsPromise: Promise<TlsSettings> | undefined;
  private learnt: Learnt | undefined;
  private closed = false;
  private readonly budget: StallBudget;

  constructor(options: HttpSourceOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch (err) {
      throw new CdiError(ErrorCodes.InvalidArgument, `invalid URL ${redactUrl(options.url)}`, {
        cause: err,
      });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new CdiError(ErrorCodes.InvalidArgument, `not an http(s) URL: ${redactUrl(url)}`);
    }
    const t = options.transport ?? {};
    const user = t.accessKeyId ?? decodeURIComponent(url.username);
    const password = t.secretKey ?? decodeURIComponent(url.password);
    this.authorization =
      user !== '' || password !== '' ? basicAuthorization(user, password) : undefined;
    url.username = '';
    url.password = '';
    this.url = url;
    this.displayName = redactUrl(options.url);
    this.options = options;
    this.logger = (options.logger ?? silentLogger).child({ source: 'http', url: this.displayName });
    this.budget = new StallBudget(options.transport?.limits);
    this.baseHeaders = { 'user-agent': IMPORTER_USER_AGENT };
    for (const [name, value] of parseExtraHeaders(t.extraHeaders ?? [])) {
      const prev = this.baseHeaders[name];
      this.baseHeaders[name] =
        prev === undefined || name === 'user-agent' ? value : `${prev}, ${value}`;
    }
  }

  /** Headers for a hop: credentials (basic auth, Authorization/Cookie extras) only to the original origin. */
  private readonly headersFor = (url: URL): Record<string, string> => {
    const headers = { ...this.baseHeaders };
    if (!isSameOrigin(url, this.url)) {
      delete headers['authorization'];
      delete headers['cookie'];
    } else if (this.authorization !== undefined) {
      headers['authorization'] = this.authorization;
    }
    return headers;
  };

  private getDispatcher(): Promise<Dispatcher> {
    if (this.closed)
      return Promise.reject(new CdiError(ErrorCodes.Internal, 'http source used after close()'));
    if (this.options.dispatcher !== undefined) return Promise.resolve(this.options.dispatcher);
    this.dispatcherPromise ??= buildDispatcher(this.dispatcherOptions()).then((d) => {
      this.dispatcher = d;
      return d;
    });
    return this.dispatcherPromise;
  }

  private dispatcherOptions(): DispatcherOptions {
    return {
      ...(this.options.transport?.certDir === undefined
        ? {}
        : { certDir: this.options.transport.certDir }),
      ...(this.options.proxyCertDir === undefined
        ? {}
        : { proxyCertDir: this.options.proxyCertDir }),
      ...(this.options.transport?.insecureTls === undefined
        ? {}
        : { insecureTls: this.options.transport.insecureTls }),
      ...(this.options.proxy === undefined ? {} : { proxy: this.options.proxy }),
      logger: this.logger,
    };
  }

  /**
   * The transport of the probe and the body: sockets of their own (socket-attempt.ts), or the
   * dispatcher behind a proxy or when the caller gave one. Ranged reads always use the
   * dispatcher (keep-alive connections).
   */
  private async transport(): Promise<HttpTransport> {
    if (this.options.dispatcher !== undefined || hasProxy(this.options.proxy)) {
      return { dispatcher: await this.getDispatcher() };
    }
    if (this.closed) throw new CdiError(ErrorCodes.Internal, 'http source used after close()');
    this.tlsPromise ??= buildTlsOptions(this.dispatcherOptions());
    return { tls: await this.tlsPromise };
  }

  private retryOptions(signal: AbortSignal, what: string): Parameters<typeof withRetries>[1] {
    return {
      maxRetries: this.options.maxRetries ?? DEFAULT_MAX_RETRIES,
      retryDelayMs: this.options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
      signal,
      logger: this.logger,
      what,
      budget: this.budget,
      source: this.displayName,
    };
  }

  async info(signal: AbortSignal): Promise<SourceInfo> {
    const base = {
      transport: await this.transport(),
      headersFor: this.headersFor,
      budget: this.budget,
      signal,
    };
    const answer = await withRetries(
      async () => {
        let head: ExchangeResult | undefined;
        try {
          head = await exchange({ ...base, url: this.url, method: 'HEAD' });
        } catch (err) {
          if (signal.aborted) throw err;
          this.logger.debug('HEAD failed, probing with a ranged GET', {
            error: errorMessage(err),
          });
        }
        if (head !== undefined && head.status >= 200 && head.status < 300) return head;
        if (head !== undefined)
          this.logger.debug('HEAD refused, probing with a ranged GET', { status: head.status });
        const get = await exchange({
          ...base,
          url: this.url,
          method: 'GET',
          extraHeaders: { range: 'bytes=0-0' },
        });
        if (get.status >= 200 && get.status < 300) return get;
        throw statusError(get.status, get.statusText);
      },
      this.retryOptions(signal, 'HEAD request'),
    );
    this.learnt = learn(answer);
    if (!isSameOrigin(answer.url, this.url) || answer.url.pathname !== this.url.pathname) {
      this.logger.info('redirected', { to: redactUrl(answer.url) });
    }
    const contentType = headerValue(answer.headers, 'content-type');
    if (contentType !== undefined && TEXT_CONTENT.test(contentType)) {
      // CDI's wording (http-datasource.go); the import goes on.
      this.logger.warn(
        `Unexpected content type '${contentType}'. Content might not be a KubeVirt image.`,
      );
    }
    return {
      length: this.learnt.length,
      randomAccess: this.learnt.ranges && this.learnt.length !== undefined,
      displayName: this.displayName,
    };
  }

  async stream(signal: AbortSignal): Promise<Readable> {
    const parallel = await this.parallelStream(signal);
    if (parallel !== undefined) return parallel;
    const body = new ResumableBody({
      transport: await this.transport(),
      url: this.learnt?.url ?? this.url,
      headersFor: this.headersFor,
      expectedLength: this.learnt?.length,
      etag: this.learnt?.etag,
      maxRetries: this.options.maxRetries ?? DEFAULT_MAX_RETRIES,
      retryDelayMs: this.options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
      budget: this.budget,
      highWaterMark: HTTP_STREAM_HIGH_WATER_MARK,
      signal,
      logger: this.logger,
    });
    // Until the caller has the stream, a failure (an abort during the first request, as on
    // Ctrl-C) reaches it through `ready`; the stream's own 'error' event has no listener yet and
    // would crash the process.
    const untilReturned = (): void => undefined;
    body.on('error', untilReturned);
    try {
      await body.ready;
    } catch (err) {
      body.destroy();
      throw err;
    }
    body.off('error', untilReturned);
    return body;
  }

  /**
   * A {@link ParallelRangeBody} when ranges work, else undefined. Segment 0 is read first as a
   * probe: a server that announces ranges but does not honour them (caching proxies, CDI #3543)
   * falls back to one plain GET.
   */
  private async parallelStream(signal: AbortSignal): Promise<Readable | undefined> {
    const learnt = this.learnt;
    const connections = this.options.parallelConnections ?? DEFAULT_PARALLEL_CONNECTIONS;
    const segmentBytes = this.options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (
      learnt?.length === undefined ||
      !learnt.ranges ||
      connections <= 1 ||
      learnt.length <= segmentBytes
    ) {
      return undefined;
    }
    let first: Buffer;
    try {
      first = await this.readRange(0, segmentBytes, signal);
    } catch (err) {
      if (errorCode(err) !== ErrorCodes.ResumeFailed) throw err;
      this.logger.warn('server announced ranges but did not honour them; using one GET', {
        error: errorMessage(err),
      });
      return undefined;
    }
    this.logger.debug('parallel ranged download', {
      connections,
      segmentBytes,
      length: learnt.length,
    });
    return new ParallelRangeBody({
      length: learnt.length,
      segmentBytes,
      connections,
      first,
      fetchSegment: (offset, length, s) => this.readRange(offset, length, s),
      signal,
    });
  }

  async readRange(offset: number, length: number, signal: AbortSignal): Promise<Buffer> {
    const learnt = this.learnt;
    if (learnt === undefined || !learnt.ranges) {
      throw new CdiError(
        ErrorCodes.Internal,
        `readRange on ${this.displayName} without range support (call info() first)`,
      );
    }
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0
    ) {
      throw new CdiError(ErrorCodes.InvalidArgument, `invalid range ${offset}+${length}`);
    }
    if (learnt.length !== undefined && offset + length > learnt.length) {
      throw new CdiError(
        ErrorCodes.UnexpectedEof,
        `range ${offset}+${length} is past the end (${learnt.length} bytes) of ${this.displayName}`,
      );
    }
    if (length === 0) return Buffer.alloc(0);
    const dispatcher = await this.getDispatcher();
    const into = Buffer.allocUnsafe(length);
    const last = offset + length - 1;
    const extraHeaders: Record<string, string> = { range: `bytes=${offset}-${last}` };
    if (learnt.etag !== undefined) extraHeaders['if-range'] = learnt.etag;
    await withRetries(
      async () => {
        const r = await exchange({
          transport: { dispatcher },
          url: learnt.url,
          method: 'GET',
          headersFor: this.headersFor,
          extraHeaders,
          into,
          budget: this.budget,
          signal,
        });
        checkRangeAnswer(r, offset, last, this.displayName);
      },
      this.retryOptions(signal, 'range request'),
    );
    return into;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const d = this.dispatcher ?? (await this.dispatcherPromise?.catch(() => undefined));
    // destroy, not close: close() would wait for a body nobody reads any more.
    if (d !== undefined && d !== this.options.dispatcher) await d.destroy();
  }
}
