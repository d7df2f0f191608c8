// SPDX-License-Identifier: Apache-2.0
/**
 * The body of an HTTP download as one Readable that survives dropped connections.
 *
 * Resume follows undici's `RetryHandler` (CONTRIBUTING.md): after a retryable failure it waits with
 * exponential backoff and asks for `Range: bytes=<bytes already emitted>-` with `If-Range` set to
 * the strong ETag of the first answer. Only a 206 whose `Content-Range` starts exactly there (and
 * agrees on the total and the ETag) is accepted; a 200 means the server cannot resume or the
 * content changed, which is fatal once bytes were emitted (`CDI_RESUME_FAILED`), because
 * restarting would duplicate bytes downstream. Before the first byte, a failure simply restarts.
 * The count of consecutive failures is reset whenever an attempt delivered bytes, so a long
 * download over a flaky link keeps going as long as it makes progress; the time spent without
 * progress is charged to the transfer's stall budget (http-limits.ts), which progress does not
 * give back, so a server that trickles a little and stalls again fails in minutes.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { Readable } from 'node:stream';

import {
  CdiError,
  ErrorCodes,
  UpstreamHttpError,
  errorCode,
  errorMessage,
  isRetryable,
} from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { startRequest, type Attempt, type HttpTransport } from './http-attempt.js';
import { idleError, isStall, type StallBudget } from './http-limits.js';
import {
  headerInteger,
  headerValue,
  parseContentRange,
  redactUrl,
  strongEtag,
} from './http-headers.js';

/** Most redirects followed by one request, as Go's http.Client. */
export const MAX_REDIRECTS = 10;
/** Longest backoff between two attempts. */
const MAX_BACKOFF_MS = 30_000;

/** Options of {@link ResumableBody}. */
export interface ResumableBodyOptions {
  readonly transport: HttpTransport;
  readonly url: URL;
  /** Request headers for a URL (auth only for the original origin). */
  readonly headersFor: (url: URL) => Record<string, string>;
  /** Length learnt by `info()`, checked against the body. */
  readonly expectedLength: number | undefined;
  /** Strong ETag learnt by `info()`. */
  readonly etag: string | undefined;
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  /** Idle timeout per attempt and time without progress for the whole transfer. */
  readonly budget: StallBudget;
  readonly highWaterMark: number;
  readonly signal: AbortSignal;
  readonly logger: Logger;
}

/** Thrown into an attempt to follow a redirect; never escapes. */
class RedirectSignal extends Error {
  constructor(readonly location: URL) {
    super('redirect');
  }
}

/** True for 301/302/303/307/308. */
export function isRedirectStatus(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** Maps an undici/network failure to CDI_CONNECT_FAILED naming the redacted URL. */
export function connectError(err: unknown, url: URL): CdiError {
  if (err instanceof CdiError) return err;
  const code = errorCode(err);
  return new CdiError(
    ErrorCodes.ConnectFailed,
    `unable to connect to ${redactUrl(url)}: ${errorMessage(err)}${code === undefined ? '' : ` (${code})`}`,
    { cause: err, retryable: isRetryable(err) },
  );
}

/** Rejects a status we cannot use with CDI's message ("expected status code 200, got 404 ..."). */
export function statusError(status: number, statusText: string): UpstreamHttpError {
  return new UpstreamHttpError(
    status,
    statusText === '' ? (STATUS_CODES[status] ?? '') : statusText,
  );
}

/** See the module comment. Resolve {@link ready} before handing the stream out. */
export class ResumableBody extends Readable {
  /** Settles when the first usable answer arrived (or failed before any byte). */
  readonly ready: Promise<void>;
  private readonly opts: ResumableBodyOptions;
  private url: URL;
  private attempt: Attempt | undefined;
  private offset = 0;
  private total: number | undefined;
  private etag: string | undefined;
  private failures = 0;
  private bytesThisAttempt = 0;
  private redirects = 0;
  /** True while the attempt is paused for backpressure (the watchdog is off meanwhile). */
  private paused = false;
  private backoff: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private readyResolve: (() => void) | undefined;
  private readyReject: ((err: Error) => void) | undefined;
  private readonly onAbort = (): void => {
    const reason: unknown = this.opts.signal.reason;
    this.destroy(
      new CdiError(ErrorCodes.Aborted, `transfer from ${redactUrl(this.url)} aborted`, {
        cause: reason,
      }),
    );
  };

  constructor(opts: ResumableBodyOptions) {
    super({ highWaterMark: opts.highWaterMark });
    this.opts = opts;
    this.url = opts.url;
    this.total = opts.expectedLength;
    this.etag = opts.etag;
    this.ready = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    // A rejection nobody awaited must not crash the process; stream() always awaits it.
    this.ready.catch(() => undefined);
    // Until `ready` settles nobody reads this stream: a failure then is reported through `ready`,
    // and its 'error' event (emitted before stream() can react) must not crash the process.
    const early = (): void => undefined;
    this.on('error', early);
    this.ready.then(
      () => this.off('error', early),
      () => undefined,
    );
    if (opts.signal.aborted) {
      queueMicrotask(this.onAbort);
      return;
    }
    opts.signal.addEventListener('abort', this.onAbort, { once: true });
    this.startAttempt();
  }

  /** Bytes emitted so far. */
  get position(): number {
    return this.offset;
  }

  override _read(): void {
    // Called on every drop below the highWaterMark; only a paused attempt needs work.
    if (!this.paused) return;
    this.paused = false;
    // Waiting for our own consumer is not a stall of the source.
    this.opts.budget.progress();
    const a = this.attempt;
    if (a !== undefined && !a.settled) {
      a.resume();
      this.armWatchdog();
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.opts.signal.removeEventListener('abort', this.onAbort);
    clearTimeout(this.backoff);
    clearTimeout(this.watchdog);
    this.attempt?.abort(err ?? new CdiError(ErrorCodes.Aborted, 'download stream destroyed'));
    this.readyReject?.(err ?? new CdiError(ErrorCodes.Aborted, 'download stream destroyed'));
    this.readyResolve = undefined;
    this.readyReject = undefined;
    callback(err);
  }

  private requestHeaders(): Record<string, string> {
    const headers = this.opts.headersFor(this.url);
    if (this.offset > 0) {
      headers['range'] = `bytes=${this.offset}-`;
      if (this.etag !== undefined) headers['if-range'] = this.etag;
    }
    return headers;
  }

  private startAttempt(): void {
    if (this.destroyed) return;
    this.bytesThisAttempt = 0;
    this.paused = false;
    const attempt = startRequest(
      this.opts.transport,
      { url: this.url, method: 'GET', headers: this.requestHeaders() },
      {
        onStart: (status, headers, text) => this.onStart(attempt, status, headers, text),
        onData: (chunk) => this.onData(attempt, chunk),
        onEnd: () => this.onEnd(),
        onError: (err) => this.onAttemptError(err),
      },
    );
    this.attempt = attempt;
    this.armWatchdog();
  }

  private onStart(
    attempt: Attempt,
    status: number,
    headers: IncomingHttpHeaders,
    text: string,
  ): void {
    if (isRedirectStatus(status)) {
      const location = headerValue(headers, 'location');
      if (location !== undefined) {
        attempt.abort(new RedirectSignal(new URL(location, this.url)));
        return;
      }
    }
    const problem =
      this.offset === 0
        ? this.checkFirstAnswer(status, headers, text)
        : this.checkResumeAnswer(status, headers, text);
    if (problem !== undefined) {
      attempt.abort(problem);
      return;
    }
    const resolve = this.readyResolve;
    this.readyResolve = undefined;
    this.readyReject = undefined;
    resolve?.();
  }

  /** The answer to a plain GET (nothing emitted yet). */
  private checkFirstAnswer(
    status: number,
    headers: IncomingHttpHeaders,
    text: string,
  ): CdiError | undefined {
    if (status !== 200) return statusError(status, text);
    const length = headerInteger(headers, 'content-length');
    if (length !== undefined) {
      if (this.opts.expectedLength !== undefined && length !== this.opts.expectedLength) {
        this.opts.logger.warn('GET length differs from HEAD length; using the GET length', {
          url: redactUrl(this.url),
          head: this.opts.expectedLength,
          get: length,
        });
      }
      this.total = length;
    }
    this.etag = strongEtag(headers);
    return undefined;
  }

  /** The answer to `Range: bytes=offset-`. */
  private checkResumeAnswer(
    status: number,
    headers: IncomingHttpHeaders,
    text: string,
  ): CdiError | undefined {
    const where = `resuming ${redactUrl(this.url)} at byte ${this.offset}`;
    if (status === 200 || status === 416) {
      return new CdiError(
        ErrorCodes.ResumeFailed,
        `${where}: server answered ${status} to a range request (no range support, or the content changed)`,
        { httpStatus: status },
      );
    }
    if (status !== 206) return statusError(status, text);
    const range = parseContentRange(headerValue(headers, 'content-range'));
    const etag = strongEtag(headers);
    const bad =
      range === undefined
        ? 'missing or malformed Content-Range'
        : range.first !== this.offset
          ? `Content-Range starts at ${range.first}`
          : this.total !== undefined && range.total !== undefined && range.total !== this.total
            ? `total length changed from ${this.total} to ${range.total}`
            : this.etag !== undefined && etag !== undefined && etag !== this.etag
              ? `ETag changed from ${this.etag} to ${etag}`
              : undefined;
    if (bad !== undefined)
      return new CdiError(ErrorCodes.ResumeFailed, `${where}: ${bad}`, { httpStatus: status });
    return undefined;
  }

  private onData(attempt: Attempt, chunk: Buffer): void {
    this.offset += chunk.length;
    this.bytesThisAttempt += chunk.length;
    this.opts.budget.progress();
    this.watchdog?.refresh();
    if (!this.push(chunk)) {
      // Backpressure: stop reading the socket until _read asks again (undici api-request.js).
      attempt.pause();
      this.paused = true;
      clearTimeout(this.watchdog);
    }
  }

  private onEnd(): void {
    clearTimeout(this.watchdog);
    if (this.total !== undefined && this.offset !== this.total) {
      this.destroy(
        new CdiError(
          ErrorCodes.ContentLengthMismatch,
          `body of ${redactUrl(this.url)} ended after ${this.offset} of ${this.total} bytes`,
          { details: { received: this.offset, expected: this.total } },
        ),
      );
      return;
    }
    this.push(null);
  }

  private onAttemptError(err: Error): void {
    clearTimeout(this.watchdog);
    if (this.destroyed) return;
    if (err instanceof RedirectSignal) {
      this.redirects += 1;
      if (this.redirects > MAX_REDIRECTS) {
        this.destroy(
          new CdiError(
            ErrorCodes.UpstreamHttp,
            `stopped after ${MAX_REDIRECTS} redirects from ${redactUrl(this.opts.url)}`,
          ),
        );
        return;
      }
      this.url = err.location;
      this.startAttempt();
      return;
    }
    if (errorCode(err) === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
      this.destroy(
        new CdiError(
          ErrorCodes.ContentLengthMismatch,
          `body of ${redactUrl(this.url)} does not match its Content-Length`,
          { cause: err },
        ),
      );
      return;
    }
    if (this.bytesThisAttempt > 0) this.failures = 0;
    this.failures += 1;
    const spent = isRetryable(err) ? this.opts.budget.charge(err, redactUrl(this.url)) : undefined;
    if (spent !== undefined) {
      this.destroy(spent);
      return;
    }
    if (!isRetryable(err) || this.failures > this.opts.maxRetries) {
      this.destroy(this.finalError(err));
      return;
    }
    const wait = Math.min(MAX_BACKOFF_MS, this.opts.retryDelayMs * 2 ** (this.failures - 1));
    this.opts.logger.warn('download interrupted, retrying', {
      url: redactUrl(this.url),
      offset: this.offset,
      attempt: this.failures,
      delayMs: wait,
      error: errorMessage(err),
    });
    this.backoff = setTimeout(() => this.startAttempt(), wait);
  }

  private finalError(err: Error): CdiError {
    if (isStall(err)) return this.opts.budget.exhausted(err, redactUrl(this.url));
    if (this.offset === 0) {
      return err instanceof CdiError ? err : connectError(err, this.url);
    }
    if (err instanceof CdiError && err.code === ErrorCodes.ResumeFailed) return err;
    const of = this.total === undefined ? '' : ` of ${this.total}`;
    return new CdiError(
      ErrorCodes.ResumeFailed,
      `download of ${redactUrl(this.url)} failed after ${this.offset}${of} bytes and ${this.failures} attempts: ${errorMessage(err)}`,
      { cause: err, details: { received: this.offset, expected: this.total } },
    );
  }

  private armWatchdog(): void {
    clearTimeout(this.watchdog);
    const attempt = this.attempt;
    if (attempt === undefined || attempt.settled) return;
    // A timer refreshed on every chunk, so its duration is fixed per attempt: the idle timeout,
    // or less when the stall budget has less left.
    const ms = this.opts.budget.watchdogMs();
    this.watchdog = setTimeout(() => {
      attempt.abort(idleError(redactUrl(this.url), ms));
    }, ms);
  }
}
