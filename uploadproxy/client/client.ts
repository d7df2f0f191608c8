// SPDX-License-Identifier: Apache-2.0
/**
 * The data half of `cdi upload`: streams a local file to the upload proxy with a bearer token and
 * resumes after network errors. The first attempt is a plain `POST` (what any CDI accepts); after
 * a drop the client asks `HEAD` how many bytes are durable and continues with
 * `PUT` + `Content-Range: bytes START-END/TOTAL`. A server without resume support (no
 * `Upload-Offset` header) gets the whole file again from byte 0, as virtctl does.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline as linkStreams } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import {
  CdiError,
  ErrorCodes,
  errorMessage,
  isRetryable,
  isRetryableStatus,
  UpstreamHttpError,
} from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { ByteCounter } from '../../importer/progress/byte-counter.js';
import type { ExpectedChecksum } from '../../importer/checksum/checksum.js';
import { UPLOAD_OFFSET_HEADER, UPLOAD_TARGET_HEADER } from '../protocol/paths.js';
import { REPR_DIGEST_HEADER, formatReprDigest } from '../protocol/repr-digest.js';

/** Upload progress: bytes acknowledged or in flight out of the file size. */
export interface UploadProgress {
  readonly sent: number;
  readonly total: number;
  /** Number of resumes so far. */
  readonly resumes: number;
}

/** Options of {@link uploadFile}. */
export interface UploadFileOptions {
  /** Base URL of the upload proxy. */
  readonly proxyUrl: string;
  readonly token: string;
  readonly file: string;
  /** Use `/v1beta1/upload-async` (answer once received). */
  readonly async?: boolean;
  /** PEM CA bundle that signs the proxy's certificate. */
  readonly caPem?: string;
  /** Skip TLS verification. */
  readonly insecure?: boolean;
  /** The file's checksum, sent as `Repr-Digest` with every part and verified by the server. */
  readonly checksum?: ExpectedChecksum;
  /** The PVC the caller means: the proxy refuses a token for another one. */
  readonly target?: { readonly namespace: string; readonly pvc: string };
  /** Attempts after the first (default 5, virtctl's). */
  readonly retries?: number;
  /** First back-off delay, doubled per attempt (default 1 s). */
  readonly retryDelayMs?: number;
  /** How long a resume waits while the server still holds the dropped request (default 2 min). */
  readonly busyTimeoutMs?: number;
  readonly onProgress?: (p: UploadProgress) => void;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** An undici dispatcher to use instead of one built from caPem/insecure (tests). */
  readonly dispatcher?: Dispatcher;
}

/** What an upload did. */
export interface UploadFileResult {
  readonly bytes: number;
  readonly resumes: number;
  /** Bytes read into requests in total, counting ones resent or refused in flight. */
  readonly bytesSent: number;
  /** The offset each resume attempt started from (0: the server kept nothing). */
  readonly resumedFrom: readonly number[];
}

/** Uploads a file; see the module comment. Throws a CdiError naming the cause. */
export async function uploadFile(options: UploadFileOptions): Promise<UploadFileResult> {
  const size = (await stat(options.file)).size;
  const dispatcher =
    options.dispatcher ??
    new Agent({
      connect: {
        ...(options.caPem === undefined ? {} : { ca: options.caPem }),
        rejectUnauthorized: options.insecure !== true,
      },
      bodyTimeout: 0,
      headersTimeout: 0,
    });
  const path = options.async === true ? '/v1beta1/upload-async' : '/v1beta1/upload';
  const url = new URL(path, options.proxyUrl).toString();
  const headers: Record<string, string> = { authorization: `Bearer ${options.token}` };
  if (options.checksum !== undefined)
    headers[REPR_DIGEST_HEADER] = formatReprDigest(options.checksum);
  if (options.target !== undefined)
    headers[UPLOAD_TARGET_HEADER] = `${options.target.namespace}/${options.target.pvc}`;
  const retries = options.retries ?? 5;
  const exchange = {
    url,
    headers,
    dispatcher,
    signal: options.signal,
    size,
    retryDelayMs: options.retryDelayMs ?? 1000,
    busyTimeoutMs: options.busyTimeoutMs ?? 120_000,
  };
  let resumes = 0;
  let bytesSent = 0;
  const resumedFrom: number[] = [];
  try {
    for (let attempt = 0; ; attempt++) {
      let offset = 0;
      try {
        if (attempt > 0) {
          offset = await durableOffset(exchange);
          resumes++;
          resumedFrom.push(offset);
          options.logger.info('resuming upload', { offset, attempt });
        }
        const sent = await sendFrom({
          ...options,
          ...exchange,
          offset,
          resumes,
          onSent: (n) => (bytesSent += n),
        });
        return { bytes: sent, resumes, bytesSent, resumedFrom };
      } catch (err) {
        if (options.signal.aborted)
          throw new CdiError(ErrorCodes.Aborted, 'upload aborted', { cause: err });
        if (!isRetryable(err) || attempt >= retries) throw err;
        options.logger.warn('upload interrupted', { error: errorMessage(err), attempt });
        await delay((options.retryDelayMs ?? 1000) * 2 ** attempt, undefined, {
          signal: options.signal,
        });
      }
    }
  } finally {
    if (options.dispatcher === undefined) await dispatcher.close();
  }
}

interface Exchange {
  readonly url: string;
  readonly retryDelayMs: number;
  /** How long HEAD may answer "busy" before the attempt fails (the server's idle timeout is 60 s). */
  readonly busyTimeoutMs: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly dispatcher: Dispatcher;
  readonly signal: AbortSignal;
  readonly size: number;
}

/** Asks the proxy how many bytes the server holds; 0 when it does not support resuming. */
async function durableOffset(x: Exchange): Promise<number> {
  // 503: the server still holds our dropped request open; wait (bounded) until it lets go.
  const deadline = Date.now() + x.busyTimeoutMs;
  let res = await head(x);
  for (let wait = x.retryDelayMs; res.statusCode === 503 && Date.now() < deadline; wait *= 2) {
    await delay(Math.min(wait, 5000), undefined, { signal: x.signal });
    res = await head(x);
  }
  if (res.statusCode !== 200) throw statusError(res.statusCode, '');
  const raw = res.headers[UPLOAD_OFFSET_HEADER];
  const offset = typeof raw === 'string' ? Number(raw) : 0;
  return Number.isSafeInteger(offset) && offset >= 0 && offset <= x.size ? offset : 0;
}

async function head(x: Exchange): Promise<Dispatcher.ResponseData> {
  const res = await request(x.url, {
    method: 'HEAD',
    headers: x.headers,
    dispatcher: x.dispatcher,
    signal: x.signal,
  });
  await res.body.dump();
  return res;
}

interface SendOptions extends Exchange, Pick<UploadFileOptions, 'file' | 'onProgress'> {
  readonly offset: number;
  readonly resumes: number;
  readonly onSent: (n: number) => void;
}

async function sendFrom(o: SendOptions): Promise<number> {
  let sent = o.offset;
  const counter = new ByteCounter((n) => {
    sent += n;
    o.onSent(n);
    o.onProgress?.({ sent, total: o.size, resumes: o.resumes });
  });
  const file = createReadStream(o.file, { start: o.offset, highWaterMark: 1 << 20 });
  // Callback form: a read error destroys the counter, which fails the request body.
  const body = linkStreams(file, counter, () => undefined);
  const headers: Record<string, string> = {
    ...o.headers,
    'content-type': 'application/octet-stream',
    'content-length': String(o.size - o.offset),
  };
  if (o.offset > 0) headers['content-range'] = `bytes ${o.offset}-${o.size - 1}/${o.size}`;
  const res = await request(o.url, {
    method: o.offset > 0 ? 'PUT' : 'POST',
    headers,
    body,
    dispatcher: o.dispatcher,
    signal: o.signal,
  });
  const text = (await res.body.text()).trim();
  if (res.statusCode === 200) return o.size;
  throw statusError(res.statusCode, text);
}

/** An error for an answer: retryable for 5xx/429/416 (a resume will ask HEAD again). */
function statusError(status: number, text: string): CdiError {
  const message =
    text === '' ? `upload proxy answered ${status}` : `upload proxy answered ${status}: ${text}`;
  if (status === 401 || status === 400 || status === 409) {
    return new CdiError(
      status === 401 ? ErrorCodes.UploadTokenInvalid : ErrorCodes.InvalidArgument,
      message,
      { httpStatus: status },
    );
  }
  const retryable = status === 416 || isRetryableStatus(status);
  return new CdiError(ErrorCodes.UpstreamHttp, message, {
    httpStatus: status,
    retryable,
    cause: new UpstreamHttpError(status, ''),
  });
}
