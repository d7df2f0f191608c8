// SPDX-License-Identifier: Apache-2.0
/**
 * One upload inside the upload server: a journal of received bytes (resumable.ts) and the import
 * pipeline tailing it. Requests attach one at a time to append bytes; the session outlives a
 * dropped connection so the client can resume.
 *
 * Sequence of phases: `start()` (journal created, pipeline running and waiting for bytes) →
 * `receive()` per request (append; the last byte marks the journal complete) → `result` settles
 * when the pipeline ends → `dispose()` (journal deleted).
 */
import { finished as whenFinished } from 'node:stream/promises';
import { finished, type Readable } from 'node:stream';
import type { ContentType } from '../../common/contract.js';
import { CdiError, ErrorCodes, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { ExpectedChecksum } from '../../importer/checksum/checksum.js';
import { runImport, type ImportResult, type ImportTarget } from '../../importer/pipeline/import.js';
import { UploadStreamSource } from '../../importer/sources/upload-stream.js';
import { MemoryJournal } from './memory-journal.js';
import { UploadJournal, type Journal } from './resumable.js';

/** What a session imports into. */
export interface UploadSessionOptions {
  readonly target: ImportTarget;
  readonly contentType: ContentType;
  readonly requestedSize?: number;
  readonly filesystemOverhead: number;
  readonly preallocation: boolean;
  /** Where a disk journal and the converter's spill file go (scratch when mounted). */
  readonly spillDir: string;
  /**
   * `memory` (default): received bytes wait in a bounded queue, the request is paused by
   * backpressure. `disk`: they are journaled on scratch first, so an async upload is answered as
   * soon as its bytes are on disk (ADR 0009).
   */
  readonly journal?: 'memory' | 'disk';
  /** The uploaded file's checksum (`Repr-Digest`), verified before the disk is published. */
  readonly checksum?: ExpectedChecksum;
  readonly logger: Logger;
}

/** How one request's bytes ended. */
export type ReceiveOutcome = 'complete' | 'partial';

/** See the module comment. */
export class UploadSession {
  readonly journal: Journal;
  readonly checksum: ExpectedChecksum | undefined;
  /** Settles when the import ends; never rejects unhandled (a catch is attached at once). */
  readonly result: Promise<ImportResult>;
  readonly #abort = new AbortController();
  #attached = false;
  #settled = false;

  private constructor(journal: Journal, options: UploadSessionOptions, length: number | undefined) {
    this.journal = journal;
    this.checksum = options.checksum;
    if (length !== undefined) journal.setTotal(length);
    this.result = runImport({
      source: new UploadStreamSource({
        stream: journal.reader(),
        ...(length === undefined ? {} : { length }),
      }),
      sourceKind: 'upload',
      contentType: options.contentType,
      target: options.target,
      ...(options.requestedSize === undefined ? {} : { requestedSize: options.requestedSize }),
      filesystemOverhead: options.filesystemOverhead,
      preallocation: options.preallocation,
      spillDir: options.spillDir,
      ...(options.checksum === undefined ? {} : { checksum: options.checksum }),
      signal: this.#abort.signal,
      logger: options.logger,
    });
    this.result.then(
      () => (this.#settled = true),
      () => (this.#settled = true),
    );
  }

  /** Creates the journal and starts the pipeline; `length` is the whole image's, when known. */
  static async start(
    options: UploadSessionOptions,
    length: number | undefined,
  ): Promise<UploadSession> {
    const journal: Journal =
      options.journal === 'disk'
        ? await UploadJournal.create(options.spillDir)
        : new MemoryJournal();
    try {
      return new UploadSession(journal, options, length);
    } catch (err) {
      await journal.dispose();
      throw err;
    }
  }

  /** True while a request is appending. */
  get attached(): boolean {
    return this.#attached;
  }
  /** True once the pipeline ended (either way). */
  get settled(): boolean {
    return this.#settled;
  }

  /**
   * Appends one request's bytes. `endsUpload` says whether this body carries the last byte
   * (a plain upload, or a Content-Range reaching the total). Resolves `complete` when the image is
   * whole, `partial` when the body ended before it; rejects when the body broke (after flushing
   * what arrived, so `HEAD` reports it) or the pipeline failed first.
   */
  async receive(body: Readable, endsUpload: boolean): Promise<ReceiveOutcome> {
    if (this.#attached)
      throw new CdiError(ErrorCodes.UploadNotReady, 'an upload is already in progress', {
        httpStatus: 503,
      });
    this.#attached = true;
    const failed = this.result.then(
      () => new CdiError(ErrorCodes.Internal, 'upload pipeline ended before the upload'),
      (err: unknown) => err,
    );
    // The body is piped (not pipelined) into the journal, so that a refusal (the pipeline failed:
    // an image too large for its claim, a corrupt stream; or the journal refused bytes past the
    // announced total) stops the appending without destroying the request: the server must still
    // answer it with the reason, which a destroyed socket cannot carry (the proxy saw a reset and
    // answered 502). A body that breaks or ends early fails the appender, hence the append.
    const appender = this.journal.appender();
    const stopWatching = finished(body, { writable: false }, (err) => {
      if (err !== undefined && err !== null) appender.destroy(err);
    });
    body.pipe(appender);
    try {
      const appended = whenFinished(appender);
      const first = await Promise.race([appended.then(() => undefined), failed]);
      if (first !== undefined) {
        appender.destroy();
        await appended.catch(() => undefined);
        throw first instanceof Error ? first : new Error(errorMessage(first));
      }
      const total = this.journal.total;
      if (endsUpload || (total !== undefined && this.journal.received === total)) {
        // No flush: the pipeline consumes the journal now and deletes it after.
        this.journal.markComplete();
        return 'complete';
      }
      await this.journal.sync();
      return 'partial';
    } catch (err) {
      await this.journal.sync().catch(() => undefined);
      throw err;
    } finally {
      body.unpipe(appender);
      stopWatching();
      this.#attached = false;
    }
  }

  /** Stops the pipeline and deletes the journal; waits for the pipeline to let go. */
  async dispose(reason = 'upload discarded'): Promise<void> {
    this.#abort.abort(new CdiError(ErrorCodes.Aborted, reason));
    this.journal.fail(new CdiError(ErrorCodes.Aborted, reason));
    await this.result.catch((err: unknown) => errorMessage(err));
    await this.journal.dispose();
  }
}
