// SPDX-License-Identifier: Apache-2.0
/**
 * Resumable uploads (beyond the Go CDI, docs/adr/0009-resumable-uploads.md). The upload server
 * appends the image bytes it receives to a journal file in the scratch space and the import
 * pipeline tails that file, so conversion streams while bytes arrive. When a connection drops the
 * journal is flushed (fsync) and the pipeline simply waits; `HEAD` answers how many bytes are
 * durable, and a `PUT`/`PATCH` with `Content-Range: bytes START-END/TOTAL` continues from there.
 */
import { EventEmitter, once } from 'node:events';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { CdiError, ErrorCodes } from '../common/errors.js';

/** Response header carrying the durable byte count (the tus protocol's name). */
export const UPLOAD_OFFSET_HEADER = 'upload-offset';
/** Response header carrying the announced total, when known. */
export const UPLOAD_LENGTH_HEADER = 'upload-length';
/** Read size of the journal tail reader: a disk-side stage (STYLE.md §4). */
export const JOURNAL_READ_SIZE = 1 << 20;

/** A parsed `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`). */
export interface ContentRange {
  readonly start: number;
  /** Inclusive last byte. */
  readonly end: number;
  readonly total: number | undefined;
}

/** Parses a request `Content-Range`; throws `CDI_INVALID_ARGUMENT` (400) when malformed. */
export function parseContentRange(value: string): ContentRange {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/i.exec(value.trim());
  const bad = (): CdiError =>
    new CdiError(ErrorCodes.InvalidArgument, `malformed Content-Range "${value}"`, {
      httpStatus: 400,
    });
  if (m === null) throw bad();
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) throw bad();
  if (total !== undefined && (!Number.isSafeInteger(total) || end >= total)) throw bad();
  return { start, end, total };
}

/**
 * The received image bytes on disk: one writer appends (one request at a time), one reader tails.
 * `received` counts bytes written, `durable` bytes flushed with fdatasync. Flushes happen when a
 * request ends short of the whole image or drops (what `HEAD` then reports), not while bytes flow:
 * a resume needs the bytes to outlive the connection, which the page cache already guarantees
 * while the pod lives, and the journal is not reused across pod restarts (ADR 0009).
 */
export class UploadJournal {
  readonly path: string;
  #handle: FileHandle;
  #received = 0;
  #durable = 0;
  #total: number | undefined;
  #complete = false;
  #failure: Error | undefined;
  /** The write in flight, if any: a dropped body may leave one behind its failed pipeline. */
  #inflight: Promise<void> = Promise.resolve();
  readonly #events = new EventEmitter();

  private constructor(file: string, handle: FileHandle) {
    this.path = file;
    this.#handle = handle;
  }

  /** Creates an empty journal in `dir`. */
  static async create(dir: string): Promise<UploadJournal> {
    const file = path.join(dir, `upload-${process.pid}-${Date.now()}.part`);
    return new UploadJournal(file, await open(file, 'w+'));
  }

  get received(): number {
    return this.#received;
  }
  get durable(): number {
    return this.#durable;
  }
  get total(): number | undefined {
    return this.#total;
  }
  get complete(): boolean {
    return this.#complete;
  }

  /** Records the announced total; a conflicting one is a client error (400). */
  setTotal(total: number): void {
    if (this.#total !== undefined && this.#total !== total)
      throw new CdiError(
        ErrorCodes.InvalidArgument,
        `upload length changed from ${this.#total} to ${total}`,
        {
          httpStatus: 400,
        },
      );
    if (total < this.#received)
      throw new CdiError(
        ErrorCodes.InvalidArgument,
        `upload length ${total} is below the ${this.#received} bytes received`,
        {
          httpStatus: 400,
        },
      );
    this.#total = total;
  }

  /**
   * A Writable appending at the end of the journal; its write callback waits for the disk. Chunks
   * queued while a write is in flight go down together in one `writev` (network chunks are 16-64
   * KiB; one syscall each would cost more than the copy).
   */
  appender(): Writable {
    const append = (chunks: readonly Buffer[], callback: (err?: Error | null) => void): void => {
      const length = chunks.reduce((n, c) => n + c.length, 0);
      if (this.#total !== undefined && this.#received + length > this.#total) {
        const message = `upload is longer than its announced ${this.#total} bytes`;
        callback(new CdiError(ErrorCodes.ContentLengthMismatch, message, { httpStatus: 400 }));
        return;
      }
      const written = this.#handle
        .writev(chunks as Buffer[], this.#received)
        .then(({ bytesWritten }) => {
          if (bytesWritten !== length)
            throw new CdiError(
              ErrorCodes.WriteFailed,
              `short journal write: ${bytesWritten} of ${length} bytes`,
            );
          this.#received += length;
          this.#events.emit('grow');
        });
      this.#inflight = written;
      written.then(
        () => callback(),
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    };
    return new Writable({
      highWaterMark: JOURNAL_READ_SIZE,
      write: (chunk: Buffer, _enc, callback): void => append([chunk], callback),
      writev: (chunks, callback): void =>
        append(
          chunks.map((c) => c.chunk as Buffer),
          callback,
        ),
    });
  }

  /** Waits for the write in flight, then flushes; `durable` becomes `received`. */
  async sync(): Promise<void> {
    await this.#inflight.catch(() => undefined);
    await this.#flush();
  }

  async #flush(): Promise<void> {
    const upto = this.#received;
    await this.#handle.datasync();
    this.#durable = Math.max(this.#durable, upto);
  }

  /** Marks the end of the image: the tail reader ends once it has read everything. */
  markComplete(): void {
    if (this.#total === undefined) this.#total = this.#received;
    if (this.#received !== this.#total)
      throw new CdiError(
        ErrorCodes.Internal,
        `journal marked complete at ${this.#received} of ${this.#total} bytes`,
      );
    this.#complete = true;
    this.#events.emit('grow');
  }

  /** Fails the tail reader (the upload was discarded). */
  fail(err: Error): void {
    this.#failure ??= err;
    this.#events.emit('grow');
  }

  /** The whole image from byte 0, waiting for bytes not yet received. */
  reader(): Readable {
    let position = 0;
    const readAt = (at: number): Promise<Buffer | null> => this.#readAt(at);
    return new Readable({
      highWaterMark: JOURNAL_READ_SIZE,
      read(): void {
        void readAt(position).then(
          (chunk) => {
            if (chunk !== null) position += chunk.length;
            this.push(chunk);
          },
          (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
        );
      },
    });
  }

  async #readAt(position: number): Promise<Buffer | null> {
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure;
      if (position < this.#received) {
        const length = Math.min(JOURNAL_READ_SIZE, this.#received - position);
        const buffer = Buffer.allocUnsafe(length);
        const { bytesRead } = await this.#handle.read(buffer, 0, length, position);
        return buffer.subarray(0, bytesRead);
      }
      if (this.#complete) return null;
      await once(this.#events, 'grow');
    }
  }

  /** Closes and deletes the journal file. */
  async dispose(): Promise<void> {
    this.fail(new CdiError(ErrorCodes.Aborted, 'upload discarded'));
    await this.#handle.close().catch(() => undefined);
    await rm(this.path, { force: true });
  }
}
