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
import { errorCode, errorMessage, isRetryable } from '../../../common/errors.js';
import type { Logger } from '../../../common/logger.js';
import { isStall, type StallBudget } from '../http-limits.js';
import { watchedChunks, withIdleTimeout } from '../idle-watch.js';
import type { RegistryClient } from './client.js';

/** Resumes per blob before giving up. */
const MAX_RESUMES = 5;
/** First back-off between resumes, doubled each time. */
const FIRST_BACKOFF_MS = 250;

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
  /**
   * The transfer's stall budget (shared with the client's requests): an answer or a body that
   * stays silent for its watchdog time is cut and resumed, and the time without progress is
   * charged, so a blob that keeps stalling fails with `CDI_SOURCE_STALLED`.
   */
  readonly budget: StallBudget;
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

async function* blobChunks(opts: BlobReaderOptions): AsyncGenerator<Buffer> {
  const maxResumes = opts.maxResumes ?? MAX_RESUMES;
  const { budget } = opts;
  const what = `registry blob ${opts.digest}`;
  let offset = 0;
  for (let resumes = 0; ; resumes++) {
    try {
      const res = await withIdleTimeout(what, budget.watchdogMs(), opts.signal, (signal) =>
        opts.client.getBlob(opts.digest, signal, offset),
      );
      budget.progress();
      try {
        const chunks = watchedChunks(res.body, budget, what);
        const body = res.partial ? chunks : skipBytes(chunks, offset);
        for await (const chunk of body) {
          offset += chunk.length;
          yield chunk;
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
      if (opts.signal.aborted || !isResumable(err)) throw err;
      const spent = budget.charge(err, opts.client.transfer);
      if (spent !== undefined) throw spent;
      if (resumes >= maxResumes) {
        throw isStall(err) ? budget.exhausted(err, opts.client.transfer) : err;
      }
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
