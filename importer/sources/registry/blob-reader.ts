// SPDX-License-Identifier: Apache-2.0
/**
 * A layer blob as one uninterrupted byte stream: a connection dropped mid-blob is resumed with
 * `Range: bytes=N-` from the count of bytes already passed on (registries serve blob ranges). A
 * registry that answers the resume with a whole 200 body has its first N bytes skipped. The
 * digest check downstream covers the concatenated bytes, so a resume can never corrupt the disk
 * silently; when resuming is not possible the original error is raised.
 */
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import {
  CdiError,
  ErrorCodes,
  errorCode,
  errorMessage,
  isRetryable,
} from '../../../common/errors.js';
import type { Logger } from '../../../common/logger.js';
import type { RegistryClient } from './client.js';

/** Resumes per blob before giving up. */
const MAX_RESUMES = 5;
/** First back-off between resumes, doubled each time. */
const FIRST_BACKOFF_MS = 250;
/** CDI cancels a transfer after 10 minutes without a byte; we resume instead. */
const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60 * 1000;

/** Options of {@link openBlobReader}. */
export interface BlobReaderOptions {
  readonly client: RegistryClient;
  readonly digest: string;
  /** The descriptor size: a body that ends before it is resumed too. */
  readonly size: number | undefined;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** Override of {@link MAX_RESUMES} (tests). */
  readonly maxResumes?: number;
  /** No byte for this long while we wait for one → the connection is cut and resumed. */
  readonly idleTimeoutMs?: number;
}

function isResumable(err: unknown): boolean {
  return isRetryable(err) || errorCode(err) === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH';
}

/** Skips the first `skip` bytes of a body (a resume answered with a whole 200). */
async function* skipBytes(body: AsyncIterable<Buffer>, skip: number): AsyncGenerator<Buffer> {
  let left = skip;
  for await (const chunk of body) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}

/**
 * Awaits the next chunk with a watchdog. The timer only runs while we wait for the network, not
 * while the consumer holds us at `yield` (a slow converter is not an idle connection).
 */
async function nextWithin<T>(
  it: AsyncIterator<T>,
  ms: number,
  onIdle: () => void,
): Promise<IteratorResult<T>> {
  const timer = setTimeout(onIdle, ms);
  try {
    return await it.next();
  } finally {
    clearTimeout(timer);
  }
}

async function* blobChunks(opts: BlobReaderOptions): AsyncGenerator<Buffer> {
  const maxResumes = opts.maxResumes ?? MAX_RESUMES;
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  let offset = 0;
  for (let resumes = 0; ; resumes++) {
    try {
      const res = await opts.client.getBlob(opts.digest, opts.signal, offset);
      const body = res.partial
        ? (res.body as AsyncIterable<Buffer>)
        : skipBytes(res.body as AsyncIterable<Buffer>, offset);
      const it = body[Symbol.asyncIterator]();
      const onIdle = (): void => {
        res.body.destroy(
          new CdiError(
            ErrorCodes.ConnectFailed,
            `no data for blob ${opts.digest} for ${Math.round(idleMs / 1000)} s`,
            { retryable: true },
          ),
        );
      };
      try {
        for (let r = await nextWithin(it, idleMs, onIdle); r.done !== true;) {
          offset += r.value.length;
          yield r.value;
          r = await nextWithin(it, idleMs, onIdle);
        }
      } finally {
        // Also when the consumer stops early (generator return at a yield): free the socket.
        res.body.destroy();
      }
      if (opts.size === undefined || offset >= opts.size) return;
      throw Object.assign(new Error(`blob body ended after ${offset} of ${opts.size} bytes`), {
        code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
      });
    } catch (err) {
      if (opts.signal.aborted || !isResumable(err) || resumes >= maxResumes) throw err;
      opts.logger.warn('blob download interrupted, resuming', {
        digest: opts.digest,
        offset,
        attempt: resumes + 1,
        error: errorMessage(err),
      });
      await delay(FIRST_BACKOFF_MS * 2 ** resumes, undefined, { signal: opts.signal });
    }
  }
}

/** The blob's bytes in order, resuming dropped connections. */
export function openBlobReader(opts: BlobReaderOptions): Readable {
  return Readable.from(blobChunks(opts), { objectMode: false });
}
