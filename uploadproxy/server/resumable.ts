// SPDX-License-Identifier: Apache-2.0
/**
 * Resumable uploads (beyond the Go CDI, docs/adr/0009-resumable-uploads.md): the `Content-Range`
 * parser, the {@link Journal} contract, and the disk journal. Received bytes wait for the import
 * pipeline in a journal (memory-journal.ts by default, or segment files on scratch here); when a
 * connection drops the pipeline simply waits, `HEAD` answers how many bytes the server holds, and a
 * `PUT`/`PATCH` with `Content-Range: bytes START-END/TOTAL` continues from there.
 */
import { EventEmitter, once } from 'node:events';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { CdiError, ErrorCodes } from '../../common/errors.js';

/** Read size of the journal tail reader: a disk-side stage (CONTRIBUTING.md). */
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

/** Validates a newly announced total against what a journal knows; both journals use it. */
export function checkAnnouncedTotal(
  known: number | undefined,
  received: number,
  total: number,
): void {
  if (known !== undefined && known !== total) {
    throw new CdiError(
      ErrorCodes.InvalidArgument,
      `upload length changed from ${known} to ${total}`,
      {
        httpStatus: 400,
      },
    );
  }
  if (total < received) {
    throw new CdiError(
      ErrorCodes.InvalidArgument,
      `upload length ${total} is below the ${received} bytes received`,
      { httpStatus: 400 },
    );
  }
}

/** The error for bytes past the announced total, or undefined when they fit. */
function overrunError(
  total: number | undefined,
  received: number,
  length: number,
): CdiError | undefined {
  if (total === undefined || received + length <= total) return undefined;
  return new CdiError(
    ErrorCodes.ContentLengthMismatch,
    `upload is longer than its announced ${total} bytes`,
    {
      httpStatus: 400,
    },
  );
}

/**
 * The Writable both journals append through: each write (or the chunks queued meanwhile, as one
 * `writev`) is refused with a 400 when it would pass the announced total, else handed to
 * `append`, whose promise, when it returns one, holds the write callback (backpressure).
 */
export function journalAppender(journal: {
  readonly highWaterMark: number;
  readonly total: () => number | undefined;
  readonly received: () => number;
  /** Undefined when the bytes were taken and there is room for more (no promise per chunk). */
  readonly append: (chunks: readonly Buffer[], length: number) => Promise<void> | undefined;
}): Writable {
  const append = (chunks: readonly Buffer[], callback: (err?: Error | null) => void): void => {
    const length = chunks.reduce((n, c) => n + c.length, 0);
    const overrun = overrunError(journal.total(), journal.received(), length);
    if (overrun !== undefined) {
      callback(overrun);
      return;
    }
    const appended = journal.append(chunks, length);
    if (appended === undefined) {
      callback();
      return;
    }
    appended.then(
      () => callback(),
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
    );
  };
  return new Writable({
    highWaterMark: journal.highWaterMark,
    write: (chunk: Buffer, _enc, callback): void => append([chunk], callback),
    writev: (chunks, callback): void =>
      append(
        chunks.map((c) => c.chunk as Buffer),
        callback,
      ),
  });
}

/**
 * Where an upload's received bytes wait for the import pipeline: in memory with backpressure
 * (memory-journal.ts, the default) or in segment files on scratch ({@link UploadJournal}).
 */
export interface Journal {
  /** Bytes appended so far. */
  readonly received: number;
  /** Bytes a resume may rely on: what `HEAD` reports. */
  readonly durable: number;
  readonly total: number | undefined;
  readonly complete: boolean;
  /** Records the announced total; a conflicting one is a client error (400). */
  setTotal(total: number): void;
  /** A Writable appending at the end; its write callback applies backpressure. */
  appender(): Writable;
  /** Makes every appended byte durable. */
  sync(): Promise<void>;
  /** Marks the end of the image. */
  markComplete(): void;
  /** Fails the reader (the upload was discarded). */
  fail(err: Error): void;
  /** The whole image from byte 0, waiting for bytes not yet received. */
  reader(): Readable;
  /** Releases everything (files, buffers). */
  dispose(): Promise<void>;
}

/**
 * What every journal tracks the same way: bytes received, the announced total, the end mark and
 * the failure that ends its reader; `grow` wakes a reader waiting for bytes.
 */
export abstract class JournalProgress implements Pick<Journal, 'received' | 'total' | 'complete'> {
  protected receivedBytes = 0;
  protected totalBytes: number | undefined;
  protected completeMark = false;
  protected failure: Error | undefined;
  protected readonly events = new EventEmitter();

  get received(): number {
    return this.receivedBytes;
  }
  get total(): number | undefined {
    return this.totalBytes;
  }
  get complete(): boolean {
    return this.completeMark;
  }

  /** Records the announced total; a conflicting one is a client error (400). */
  setTotal(total: number): void {
    checkAnnouncedTotal(this.totalBytes, this.receivedBytes, total);
    this.totalBytes = total;
  }

  /** Marks the end of the image: the reader ends once it has read everything. */
  markComplete(): void {
    if (this.totalBytes === undefined) this.totalBytes = this.receivedBytes;
    if (this.receivedBytes !== this.totalBytes)
      throw new CdiError(
        ErrorCodes.Internal,
        `journal marked complete at ${this.receivedBytes} of ${this.totalBytes} bytes`,
      );
    this.completeMark = true;
    this.events.emit('grow');
  }

  /** Fails the reader (the upload was discarded). */
  fail(err: Error): void {
    this.failure ??= err;
    this.events.emit('grow');
  }
}

/** Size of one journal segment file (see {@link UploadJournal}). */
export const JOURNAL_SEGMENT_SIZE = 32 << 20;

interface Segment {
  readonly path: string;
  readonly handle: Promise<FileHandle>;
}

/** Splits buffers laid end to end from `start` at multiples of `size`: [segment, offset, parts]. */
function splitBySegment(
  chunks: readonly Buffer[],
  start: number,
  size: number,
): [number, number, Buffer[]][] {
  const out: [number, number, Buffer[]][] = [];
  let position = start;
  for (let chunk of chunks) {
    while (chunk.length > 0) {
      const index = Math.floor(position / size);
      const within = position % size;
      const piece = chunk.subarray(0, Math.min(chunk.length, size - within));
      const last = out.at(-1);
      if (last?.[0] === index) last[2].push(piece);
      else out.push([index, within, [piece]]);
      position += piece.length;
      chunk = chunk.subarray(piece.length);
    }
  }
  return out;
}

/**
 * The received image bytes on disk: one writer appends (one request at a time), one reader tails.
 * `received` counts bytes written, `durable` bytes flushed with fdatasync. Flushes happen when a
 * request ends short of the whole image or drops (what `HEAD` then reports), not while bytes flow:
 * a resume needs the bytes to outlive the connection, which the page cache already guarantees
 * while the pod lives, and the journal is not reused across pod restarts (ADR 0009).
 *
 * The journal is a chain of segment files (`<path>.<n>`, {@link JOURNAL_SEGMENT_SIZE} each). A
 * resume only ever appends, and the pipeline never reads back, so a segment the reader has passed
 * is deleted at once: the journal holds only what the pipeline has not consumed yet, and deleted
 * pages that were never written back cost no disk I/O.
 */
export class UploadJournal extends JournalProgress implements Journal {
  /** Prefix of the segment files. */
  readonly path: string;
  readonly #segmentSize: number;
  readonly #segments = new Map<number, Segment>();
  #durable = 0;
  /** The write in flight, if any: a dropped body may leave one behind its failed pipeline. */
  #inflight: Promise<void> = Promise.resolve();

  private constructor(prefix: string, segmentSize: number) {
    super();
    this.path = prefix;
    this.#segmentSize = segmentSize;
  }

  /** Creates an empty journal in `dir`. */
  static create(
    dir: string,
    options: { readonly segmentSize?: number } = {},
  ): Promise<UploadJournal> {
    const prefix = path.join(dir, `upload-${process.pid}-${Date.now()}.part`);
    return Promise.resolve(new UploadJournal(prefix, options.segmentSize ?? JOURNAL_SEGMENT_SIZE));
  }

  /** Paths of the segment files that exist now. */
  segmentPaths(): string[] {
    return [...this.#segments.values()].map((s) => s.path);
  }

  get durable(): number {
    return this.#durable;
  }

  /**
   * A Writable appending at the end of the journal; its write callback waits for the disk. Chunks
   * queued while a write is in flight go down together in one `writev` (network chunks are 16-64
   * KiB; one syscall each would cost more than the copy).
   */
  appender(): Writable {
    return journalAppender({
      highWaterMark: JOURNAL_READ_SIZE,
      total: () => this.totalBytes,
      received: () => this.receivedBytes,
      append: (chunks, length) => {
        const written = this.#write(chunks, length);
        this.#inflight = written;
        return written;
      },
    });
  }

  async #write(chunks: readonly Buffer[], length: number): Promise<void> {
    for (const [index, within, parts] of splitBySegment(
      chunks,
      this.receivedBytes,
      this.#segmentSize,
    )) {
      const handle = await this.#segment(index).handle;
      const want = parts.reduce((n, p) => n + p.length, 0);
      const { bytesWritten } = await handle.writev(parts, within);
      if (bytesWritten !== want)
        throw new CdiError(
          ErrorCodes.WriteFailed,
          `short journal write: ${bytesWritten} of ${want} bytes`,
        );
    }
    this.receivedBytes += length;
    this.events.emit('grow');
  }

  #segment(index: number): Segment {
    let segment = this.#segments.get(index);
    if (segment === undefined) {
      const file = `${this.path}.${index}`;
      segment = { path: file, handle: open(file, 'w+') };
      this.#segments.set(index, segment);
    }
    return segment;
  }

  /** Deletes a segment the reader has passed. */
  async #drop(index: number): Promise<void> {
    const segment = this.#segments.get(index);
    if (segment === undefined) return;
    this.#segments.delete(index);
    await (await segment.handle).close().catch(() => undefined);
    await rm(segment.path, { force: true });
  }

  /** Waits for the write in flight, then flushes; `durable` becomes `received`. */
  async sync(): Promise<void> {
    await this.#inflight.catch(() => undefined);
    await this.#flush();
  }

  async #flush(): Promise<void> {
    const upto = this.receivedBytes;
    for (const [index, segment] of [...this.#segments]) {
      await (await segment.handle).datasync().catch((err: unknown) => {
        // A segment the reader deleted meanwhile needs no flush.
        if (this.#segments.get(index) === segment) throw err;
      });
    }
    this.#durable = Math.max(this.#durable, upto);
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
      if (this.failure !== undefined) throw this.failure;
      if (position < this.receivedBytes) {
        const index = Math.floor(position / this.#segmentSize);
        const within = position % this.#segmentSize;
        const length = Math.min(
          JOURNAL_READ_SIZE,
          this.receivedBytes - position,
          this.#segmentSize - within,
        );
        const buffer = Buffer.allocUnsafe(length);
        const handle = await this.#segment(index).handle;
        const { bytesRead } = await handle.read(buffer, 0, length, within);
        if (bytesRead !== length)
          throw new CdiError(
            ErrorCodes.Internal,
            `short journal read at ${position}: ${bytesRead} of ${length}`,
          );
        if (within + length === this.#segmentSize) await this.#drop(index);
        return buffer;
      }
      if (this.completeMark) return null;
      await once(this.events, 'grow');
    }
  }

  /** Closes and deletes every segment file. */
  async dispose(): Promise<void> {
    this.fail(new CdiError(ErrorCodes.Aborted, 'upload discarded'));
    await this.#inflight.catch(() => undefined);
    for (const index of [...this.#segments.keys()]) await this.#drop(index);
  }
}
