// SPDX-License-Identifier: Apache-2.0
/**
 * An incoming upload as a data source (CDI `upload-datasource.go`).
 *
 * Sequence of phases: `info()` (no I/O: the length is what the client announced, if anything),
 * then `stream()` exactly once (the body itself, in order), then `close()` (idempotent; destroys
 * the body if it was never read to the end). Not random access: a qcow2 upload goes to the
 * streaming converter.
 */
import type { Readable } from 'node:stream';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import type { DataSource, SourceInfo } from './types.js';

/** Options of {@link UploadStreamSource}. */
export interface UploadStreamSourceOptions {
  readonly stream: Readable;
  /** The announced length (Content-Length or Content-Range total), when known. */
  readonly length?: number;
  /** For logs; default `upload`. */
  readonly displayName?: string;
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error
    ? signal.reason
    : new CdiError(ErrorCodes.Aborted, 'upload aborted');
}

/** See the module comment. */
export class UploadStreamSource implements DataSource {
  readonly #stream: Readable;
  readonly #length: number | undefined;
  readonly #displayName: string;
  #taken = false;

  constructor(options: UploadStreamSourceOptions) {
    this.#stream = options.stream;
    this.#length = options.length;
    this.#displayName = options.displayName ?? 'upload';
  }

  info(signal: AbortSignal): Promise<SourceInfo> {
    if (signal.aborted) return Promise.reject(abortReason(signal));
    return Promise.resolve({
      length: this.#length,
      randomAccess: false,
      displayName: this.#displayName,
    });
  }

  stream(signal: AbortSignal): Promise<Readable> {
    if (signal.aborted) return Promise.reject(abortReason(signal));
    if (this.#taken)
      return Promise.reject(new CdiError(ErrorCodes.Internal, 'upload stream read twice'));
    this.#taken = true;
    return Promise.resolve(this.#stream);
  }

  close(): Promise<void> {
    if (!this.#stream.readableEnded) this.#stream.destroy();
    return Promise.resolve();
  }
}
