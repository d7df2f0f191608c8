// SPDX-License-Identifier: Apache-2.0
/**
 * Small request/response exchanges of the http source: the HEAD (or probing GET) of `info()` and
 * the ranged GETs of `readRange()`. Redirects are followed here (at most {@link MAX_REDIRECTS});
 * the body is either copied into a caller's buffer or discarded. Retries with backoff wrap whole
 * exchanges ({@link withRetries}).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

import { CdiError, ErrorCodes, errorMessage, isRetryable } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { startRequest, type HttpTransport } from './http-attempt.js';
import { idleError, isStall, type StallBudget } from './http-limits.js';
import {
  headerInteger,
  headerValue,
  parseContentRange,
  redactUrl,
  strongEtag,
} from './http-headers.js';
import { MAX_REDIRECTS, connectError, isRedirectStatus, statusError } from './http-resume.js';

/** Bodies we discard are read to the end (keeping the connection) up to this size, else cut. */
const DISCARD_LIMIT = 64 * 1024;

/** One exchange. */
export interface ExchangeRequest {
  readonly transport: HttpTransport;
  readonly url: URL;
  readonly method: 'GET' | 'HEAD';
  /** Base headers for a URL (credentials only for the original origin). */
  readonly headersFor: (url: URL) => Record<string, string>;
  /** Added to every hop (Range, If-Range). */
  readonly extraHeaders?: Readonly<Record<string, string>>;
  /** A 206 body is copied here and must fit; every other body is discarded. */
  readonly into?: Buffer;
  /** Idle timeout of the exchange (cut to the stall budget left); progress is reported to it. */
  readonly budget: StallBudget;
  readonly signal: AbortSignal;
}

/** The final answer of an exchange. */
export interface ExchangeResult {
  readonly status: number;
  readonly statusText: string;
  readonly headers: IncomingHttpHeaders;
  /** The URL that answered, after redirects. */
  readonly url: URL;
  /** Body bytes copied into `into`. */
  readonly received: number;
}

class RedirectTo extends Error {
  constructor(readonly location: URL) {
    super('redirect');
  }
}

function once(req: ExchangeRequest, url: URL): Promise<ExchangeResult> {
  return new Promise<ExchangeResult>((resolve, reject) => {
    let result: { status: number; statusText: string; headers: IncomingHttpHeaders } | undefined;
    let received = 0;
    let discarded = 0;
    let copying = false;
    // Armed before the request: a synchronous failure inside dispatch() may already call finish().
    const idleMs = req.budget.watchdogMs();
    const timer = setTimeout(() => {
      attempt.abort(idleError(redactUrl(url), idleMs));
    }, idleMs);
    const finish = (): void => {
      clearTimeout(timer);
      req.signal.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      attempt.abort(
        new CdiError(ErrorCodes.Aborted, `request to ${redactUrl(url)} aborted`, {
          cause: req.signal.reason,
        }),
      );
    };
    const attempt = startRequest(
      req.transport,
      {
        url,
        method: req.method,
        headers: { ...req.headersFor(url), ...req.extraHeaders },
      },
      {
        onStart(status, headers, statusText) {
          if (isRedirectStatus(status)) {
            const location = headerValue(headers, 'location');
            if (location !== undefined) {
              attempt.abort(new RedirectTo(new URL(location, url)));
              return;
            }
          }
          result = { status, statusText, headers };
          // Copy only a 206 of exactly the buffer's size; anything else is judged after the end.
          const cr = parseContentRange(headerValue(headers, 'content-range'));
          copying =
            status === 206 && cr !== undefined && cr.last - cr.first + 1 === req.into?.length;
        },
        onData(chunk) {
          timer.refresh();
          req.budget.progress();
          const into = req.into;
          if (into !== undefined && copying) {
            if (received + chunk.length > into.length) {
              attempt.abort(
                new CdiError(
                  ErrorCodes.ContentLengthMismatch,
                  `range answer of ${redactUrl(url)} is longer than ${into.length} bytes`,
                ),
              );
              return;
            }
            chunk.copy(into, received);
            received += chunk.length;
            return;
          }
          discarded += chunk.length;
          if (discarded > DISCARD_LIMIT && result !== undefined) {
            // Resolve first: the abort below settles the attempt through onError.
            finish();
            resolve({ ...result, url, received });
            attempt.abort(new Error('body not needed'));
          }
        },
        onEnd() {
          finish();
          if (result === undefined)
            reject(new CdiError(ErrorCodes.Internal, 'response ended without headers'));
          else resolve({ ...result, url, received });
        },
        onError(err) {
          finish();
          reject(err);
        },
      },
    );
    if (req.signal.aborted) onAbort();
    else req.signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Runs one exchange, following redirects; network failures become CDI_CONNECT_FAILED. */
export async function exchange(req: ExchangeRequest): Promise<ExchangeResult> {
  let url = req.url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    try {
      return await once(req, url);
    } catch (err) {
      if (err instanceof RedirectTo) {
        url = err.location;
        continue;
      }
      throw connectError(err, url);
    }
  }
  throw new CdiError(
    ErrorCodes.UpstreamHttp,
    `stopped after ${MAX_REDIRECTS} redirects from ${redactUrl(req.url)}`,
  );
}

/** Options of {@link withRetries}. */
export interface RetryOptions {
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** For the log line. */
  readonly what: string;
  /** Failures are charged to it; a spent budget ends the retries with `CDI_SOURCE_STALLED`. */
  readonly budget: StallBudget;
  /** The redacted source, for the stall message. */
  readonly source: string;
}

/** Runs `fn` again after retryable failures (isRetryable), with capped exponential backoff. */
export async function withRetries<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let failures = 0; ;) {
    try {
      return await fn();
    } catch (err) {
      failures += 1;
      if (!isRetryable(err) || opts.signal.aborted) throw err;
      const spent = opts.budget.charge(err, opts.source);
      if (spent !== undefined) throw spent;
      if (failures > opts.maxRetries)
        throw isStall(err) ? opts.budget.exhausted(err, opts.source) : err;
      const wait = Math.min(30_000, opts.retryDelayMs * 2 ** (failures - 1));
      opts.logger.warn(`${opts.what} failed, retrying`, {
        attempt: failures,
        delayMs: wait,
        error: errorMessage(err),
      });
      try {
        await sleep(wait, undefined, { signal: opts.signal });
      } catch {
        throw new CdiError(ErrorCodes.Aborted, `${opts.what} aborted`, {
          cause: opts.signal.reason,
        });
      }
    }
  }
}

/** What `info()` learnt about a resource. */
export interface Learnt {
  readonly url: URL;
  readonly length: number | undefined;
  readonly ranges: boolean;
  readonly etag: string | undefined;
}

/** What an `info()` answer (HEAD 2xx, or a probing GET's 200/206) says about the resource. */
export function learn(answer: ExchangeResult): Learnt {
  const range =
    answer.status === 206
      ? parseContentRange(headerValue(answer.headers, 'content-range'))
      : undefined;
  const acceptRanges =
    headerValue(answer.headers, 'accept-ranges')?.trim().toLowerCase() === 'bytes';
  return {
    url: answer.url,
    length: answer.status === 206 ? range?.total : headerInteger(answer.headers, 'content-length'),
    ranges: answer.status === 206 ? range !== undefined : acceptRanges,
    etag: strongEtag(answer.headers),
  };
}

/** Accepts only a 206 carrying exactly bytes `first..last`; throws the matching CdiError otherwise. */
export function checkRangeAnswer(
  r: ExchangeResult,
  first: number,
  last: number,
  name: string,
): void {
  if (r.status === 206) {
    const cr = parseContentRange(headerValue(r.headers, 'content-range'));
    if (cr?.first !== first || cr.last !== last) {
      throw new CdiError(
        ErrorCodes.ResumeFailed,
        `range ${first}-${last} of ${name}: server sent Content-Range ${headerValue(r.headers, 'content-range') ?? '(none)'}`,
      );
    }
    if (r.received !== last - first + 1) {
      throw new CdiError(
        ErrorCodes.ContentLengthMismatch,
        `range ${first}-${last} of ${name}: got ${r.received} bytes`,
        {
          retryable: true,
        },
      );
    }
    return;
  }
  if (r.status === 200) {
    throw new CdiError(
      ErrorCodes.ResumeFailed,
      `range ${first}-${last} of ${name}: server answered 200 (no range support, or the content changed)`,
    );
  }
  throw statusError(r.status, r.statusText);
}
