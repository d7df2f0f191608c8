// SPDX-License-Identifier: Apache-2.0
/**
 * The S3 data source (CDI `pkg/importer/s3-datasource.go`), on @aws-sdk/client-s3.
 *
 * Sequence of phases:
 * 1. `new S3Source(options)`: parses the URL (rules in s3-url.ts), no I/O.
 * 2. `info()`: builds the client (custom endpoint, CA dir, INSECURE_TLS) and sends HeadObject
 *    for the length and ETag.
 * 3. `stream()`: GetObject; a body cut mid-way is resumed with a ranged GetObject pinned to the
 *    ETag (`If-Match`), like the http source. Or `readRange()`: ranged GetObject.
 * 4. `close()`: destroys the client; idempotent.
 *
 * Without an access key the requests are anonymous (public buckets); the SDK's own credential
 * chain (instance metadata, profiles) is deliberately not consulted, so the importer never
 * picks up credentials it was not given.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  GetObjectCommand,
  HeadObjectCommand,
  S3Client,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';

import {
  CdiError,
  ErrorCodes,
  errorMessage,
  isRetryable,
  isRetryableStatus,
} from '../../common/errors.js';
import { silentLogger, type Logger } from '../../common/logger.js';
import { isStall, StallBudget, type TransferLimits } from './http-limits.js';
import { retryStalls, watchedChunks } from './idle-watch.js';
import { loadCaBundle } from './tls-ca.js';
import { parseS3Url, type S3Location } from './s3-url.js';
import type { DataSource, SourceInfo } from './types.js';

/** AWS region when none is given or named in the URL. */
export const DEFAULT_S3_REGION = 'us-east-1';
/** highWaterMark of the object stream (network stage). */
export const S3_STREAM_HIGH_WATER_MARK = 1 << 20;

/** Options of {@link S3Source}. */
export interface S3SourceOptions {
  /** `s3://bucket/key` or an endpoint URL `http(s)://host:port/bucket/key`. */
  readonly url: string;
  /** Endpoint for `s3://` URLs (MinIO, ...). */
  readonly endpoint?: string;
  /** Region (from `AWS_REGION` via the config); default the URL's, else us-east-1. */
  readonly region?: string;
  readonly accessKeyId?: string;
  readonly secretKey?: string;
  readonly certDir?: string;
  readonly insecureTls?: boolean;
  readonly logger?: Logger;
  /**
   * Idle timeout per request and stall budget of the transfer (default 60 s and 4 min): the SDK
   * has no idle timeout of its own, so a silent answer or body would hang for ever.
   */
  readonly limits?: TransferLimits;
  /** Consecutive failures tolerated when resuming the object stream (default 5). */
  readonly maxRetries?: number;
  readonly retryDelayMs?: number;
}

interface SdkErrorShape {
  readonly name?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

function sdkStatus(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null
    ? (err as SdkErrorShape).$metadata?.httpStatusCode
    : undefined;
}

/** Maps an SDK or network failure to CDI_S3_FAILED with a message a user can act on. */
export function s3Error(err: unknown, what: string, where: string): CdiError {
  if (err instanceof CdiError) return err;
  const status = sdkStatus(err);
  const name = err instanceof Error ? err.name : 'Error';
  let message: string;
  if (status === 404 || name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket') {
    message = `${what} ${where}: object not found (${name === 'NotFound' ? 'NoSuchKey' : name})`;
  } else if (status === 403 || name === 'AccessDenied' || name === 'Forbidden') {
    message = `${what} ${where}: access denied (check the access key and secret)`;
  } else {
    message = `${what} ${where} failed: ${errorMessage(err)}${status === undefined ? '' : ` (HTTP ${status})`}`;
  }
  const retryable = status === undefined ? isRetryable(err) : isRetryableStatus(status);
  return new CdiError(ErrorCodes.S3Failed, message, {
    cause: err,
    retryable,
    ...(status === undefined ? {} : { httpStatus: status }),
  });
}

/** Worth another ranged GetObject: network failures and retryable S3 answers, not a changed object. */
function isResumable(err: unknown): boolean {
  if (err instanceof CdiError) return err.retryable;
  return isRetryable(err) || sdkStatus(err) === undefined;
}

/** See the module comment. */
export class S3Source implements DataSource {
  private readonly location: S3Location;
  private readonly options: S3SourceOptions;
  private readonly logger: Logger;
  private readonly where: string;
  /** Time without progress, shared by every request of the transfer (http-limits.ts). */
  private readonly budget: StallBudget;
  private client: Promise<S3Client> | undefined;
  private etag: string | undefined;
  private length: number | undefined;
  private closed = false;

  constructor(options: S3SourceOptions) {
    this.location = parseS3Url(options.url, options.endpoint);
    this.options = options;
    this.where = `s3://${this.location.bucket}/${this.location.key}`;
    this.budget = new StallBudget(options.limits);
    this.logger = (options.logger ?? silentLogger).child({ source: 's3', object: this.where });
  }

  private getClient(): Promise<S3Client> {
    if (this.closed)
      return Promise.reject(new CdiError(ErrorCodes.Internal, 's3 source used after close()'));
    this.client ??= this.buildClient();
    return this.client;
  }

  private async buildClient(): Promise<S3Client> {
    const o = this.options;
    const ca = await loadCaBundle([o.certDir], this.logger);
    const tls = {
      ...(ca === undefined ? {} : { ca }),
      rejectUnauthorized: o.insecureTls !== true,
      minVersion: 'TLSv1.2' as const,
    };
    const anonymous = (o.accessKeyId ?? '') === '' && (o.secretKey ?? '') === '';
    return new S3Client({
      region: o.region ?? this.location.region ?? DEFAULT_S3_REGION,
      ...(this.location.endpoint === undefined ? {} : { endpoint: this.location.endpoint }),
      forcePathStyle: this.location.forcePathStyle,
      // Retries are ours (resume from the byte reached), not the SDK's whole-request ones.
      maxAttempts: 3,
      requestHandler: {
        httpAgent: new HttpAgent({ keepAlive: true }),
        httpsAgent: new HttpsAgent({ keepAlive: true, ...tls }),
      },
      ...(anonymous
        ? {
            credentials: { accessKeyId: '', secretAccessKey: '' },
            signer: { sign: (req) => Promise.resolve(req) },
          }
        : {
            credentials: { accessKeyId: o.accessKeyId ?? '', secretAccessKey: o.secretKey ?? '' },
          }),
    });
  }

  async info(signal: AbortSignal): Promise<SourceInfo> {
    const client = await this.getClient();
    try {
      const head = await retryStalls(
        this.budget,
        { request: `HeadObject ${this.where}`, transfer: this.where },
        signal,
        (s) =>
          client.send(
            new HeadObjectCommand({ Bucket: this.location.bucket, Key: this.location.key }),
            { abortSignal: s },
          ),
      );
      this.length = head.ContentLength;
      this.etag = head.ETag;
    } catch (err) {
      throw this.fail(err, 'HeadObject', signal);
    }
    return {
      length: this.length,
      randomAccess: this.length !== undefined,
      displayName: this.where,
    };
  }

  private fail(err: unknown, what: string, signal: AbortSignal): CdiError {
    if (signal.aborted) {
      return new CdiError(ErrorCodes.Aborted, `${what} ${this.where} aborted`, {
        cause: signal.reason,
      });
    }
    return s3Error(err, what, this.where);
  }

  /** One GetObject (ranged and pinned to the ETag when `range` is given), unwatched. */
  private async sendGet(
    range: string | undefined,
    signal: AbortSignal,
  ): Promise<GetObjectCommandOutput> {
    const client = await this.getClient();
    const command = new GetObjectCommand({
      Bucket: this.location.bucket,
      Key: this.location.key,
      ...(range === undefined ? {} : { Range: range }),
      ...(range !== undefined && this.etag !== undefined ? { IfMatch: this.etag } : {}),
    });
    return client.send(command, { abortSignal: signal });
  }

  /** GetObject whose answer (headers) arrives under the watchdog; its body is watched by its reader. */
  private async get(
    range: string | undefined,
    signal: AbortSignal,
  ): Promise<GetObjectCommandOutput> {
    try {
      return await retryStalls(
        this.budget,
        { request: `GetObject ${this.where}`, transfer: this.where },
        signal,
        (s) => this.sendGet(range, s),
      );
    } catch (err) {
      throw this.fail(err, 'GetObject', signal);
    }
  }

  async stream(signal: AbortSignal): Promise<Readable> {
    const first = await this.get(undefined, signal);
    this.etag ??= first.ETag;
    const total = first.ContentLength ?? this.length;
    return Readable.from(this.resumingBody(first, total, signal), {
      objectMode: false,
      highWaterMark: S3_STREAM_HIGH_WATER_MARK,
    });
  }

  /** Yields the object's bytes; a cut body is resumed with `Range` + `If-Match` (see module comment). */
  private async *resumingBody(
    first: GetObjectCommandOutput,
    total: number | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<Buffer> {
    let body = first.Body as Readable | undefined;
    let offset = 0;
    let failures = 0;
    for (;;) {
      const before = offset;
      try {
        body ??= await this.reopen(offset, signal);
        for await (const b of watchedChunks(body, this.budget, `GetObject ${this.where}`)) {
          offset += b.length;
          yield b;
        }
        if (total !== undefined && offset !== total) {
          throw new CdiError(
            ErrorCodes.ContentLengthMismatch,
            `object ${this.where} ended after ${offset} of ${total} bytes`,
          );
        }
        return;
      } catch (err) {
        body?.destroy();
        body = undefined;
        if (signal.aborted) throw this.fail(err, 'GetObject', signal);
        failures = offset > before ? 1 : failures + 1;
        const fatal = this.givingUp(err, failures, offset, total);
        if (fatal !== undefined) throw fatal;
        const wait = Math.min(30_000, (this.options.retryDelayMs ?? 1_000) * 2 ** (failures - 1));
        this.logger.warn('object download interrupted, resuming', {
          offset,
          attempt: failures,
          delayMs: wait,
          error: errorMessage(err),
        });
        await sleep(wait, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  /**
   * The error that ends the download after a failed attempt, or undefined to resume: the stall
   * budget spent, a failure that cannot be resumed, or too many failures in a row.
   */
  private givingUp(
    err: unknown,
    failures: number,
    offset: number,
    total: number | undefined,
  ): CdiError | undefined {
    if (!isResumable(err)) return this.resumeError(err, offset, total);
    const spent = this.budget.charge(err, this.where);
    if (spent !== undefined) return spent;
    if (failures <= (this.options.maxRetries ?? 5)) return undefined;
    return isStall(err)
      ? this.budget.exhausted(err, this.where)
      : this.resumeError(err, offset, total);
  }

  /** A ranged GetObject from `offset`, pinned to the ETag; a changed object answers 412. */
  private async reopen(offset: number, signal: AbortSignal): Promise<Readable> {
    const out = await this.get(`bytes=${offset}-`, signal);
    if (out.Body === undefined) {
      throw new CdiError(ErrorCodes.S3Failed, `GetObject ${this.where} returned no body`, {
        retryable: true,
      });
    }
    const range =
      out.ContentRange === undefined ? undefined : /^bytes (\d+)-/.exec(out.ContentRange);
    if (range === null || (range !== undefined && Number(range[1]) !== offset)) {
      throw new CdiError(
        ErrorCodes.ResumeFailed,
        `resuming ${this.where} at byte ${offset}: server sent Content-Range ${out.ContentRange ?? ''}`,
      );
    }
    return out.Body as Readable;
  }

  private resumeError(err: unknown, offset: number, total: number | undefined): CdiError {
    if (offset === 0) return s3Error(err, 'GetObject', this.where);
    if (err instanceof CdiError && err.code !== ErrorCodes.S3Failed) return err;
    const status = sdkStatus(err instanceof CdiError ? err.cause : err);
    const of = total === undefined ? '' : ` of ${total}`;
    const why = status === 412 ? 'the object changed (ETag)' : errorMessage(err);
    return new CdiError(
      ErrorCodes.ResumeFailed,
      `download of ${this.where} failed after ${offset}${of} bytes: ${why}`,
      {
        cause: err,
        details: { received: offset, expected: total },
      },
    );
  }

  async readRange(offset: number, length: number, signal: AbortSignal): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    if (this.length !== undefined && offset + length > this.length) {
      throw new CdiError(
        ErrorCodes.UnexpectedEof,
        `range ${offset}+${length} is past the end (${this.length} bytes) of ${this.where}`,
      );
    }
    const range = `bytes=${offset}-${offset + length - 1}`;
    const buf = Buffer.allocUnsafe(length);
    let n: number;
    try {
      // One attempt is the request and its body, silent for at most the watchdog time.
      n = await retryStalls(
        this.budget,
        { request: `GetObject ${this.where}`, transfer: this.where },
        signal,
        async (s, alive) => {
          const out = await this.sendGet(range, s);
          const body = out.Body as Readable;
          const cut = (): void =>
            void body.destroy(s.reason instanceof Error ? s.reason : undefined);
          s.addEventListener('abort', cut, { once: true });
          let got = 0;
          try {
            for await (const chunk of body) {
              alive();
              const b = chunk as Buffer;
              if (got + b.length > length)
                throw new CdiError(
                  ErrorCodes.ContentLengthMismatch,
                  `range ${offset}+${length} of ${this.where}: too many bytes`,
                );
              b.copy(buf, got);
              got += b.length;
            }
          } finally {
            s.removeEventListener('abort', cut);
          }
          return got;
        },
      );
    } catch (err) {
      throw this.fail(err, 'GetObject', signal);
    }
    if (n !== length) {
      throw new CdiError(
        ErrorCodes.ContentLengthMismatch,
        `range ${offset}+${length} of ${this.where}: got ${n} bytes`,
      );
    }
    return buf;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const c = await this.client?.catch(() => undefined);
    c?.destroy();
  }
}
