// SPDX-License-Identifier: Apache-2.0
/**
 * The default journal of resumable uploads (docs/adr/0009-resumable-uploads.md): received bytes
 * wait in a small in-memory queue for the import pipeline, and the request is paused by
 * backpressure while the queue is over its limit. Bytes the pipeline consumed are never needed
 * again (a resume only appends), so nothing is written to disk twice; a dropped connection leaves
 * the queued bytes in place and the pipeline waiting for the rest.
 */
import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { handOver } from '../../common/handed-over.js';
import { journalAppender, JournalProgress, type Journal } from './resumable.js';

/** Bytes queued before the request is paused: a few network windows. */
export const MEMORY_JOURNAL_LIMIT = 8 << 20;

/** See the module comment. */
export class MemoryJournal extends JournalProgress implements Journal {
  readonly #limit: number;
  readonly #queue: Buffer[] = [];
  #queued = 0;
  #reader: Readable | undefined;
  /** The reader asked for bytes that had not arrived: the next ones go straight to it. */
  #readerWaiting = false;

  constructor(options: { readonly limit?: number } = {}) {
    super();
    this.#limit = options.limit ?? MEMORY_JOURNAL_LIMIT;
    // The end mark and a failure wake the reader as new bytes do.
    this.events.on('grow', () => this.#feed());
  }

  /** Everything received is held by the process until the pipeline consumed it. */
  get durable(): number {
    return this.receivedBytes;
  }
  /** Bytes waiting for the pipeline. */
  get queued(): number {
    return this.#queued;
  }

  /**
   * Queues each chunk and hands it to a waiting reader at once. The write callback is called at
   * once while the queue is within its limit (no promise per chunk: a gigabyte arrives in tens of
   * thousands of TLS records) and waits for room otherwise.
   */
  appender(): Writable {
    return journalAppender({
      highWaterMark: 64 * 1024,
      total: () => this.totalBytes,
      received: () => this.receivedBytes,
      append: (chunks, length) => {
        this.#queue.push(...chunks);
        this.#queued += length;
        this.receivedBytes += length;
        this.#feed();
        return this.#queued > this.#limit ? this.#whenRoom() : undefined;
      },
    });
  }

  async #whenRoom(): Promise<void> {
    while (this.#queued > this.#limit) {
      if (this.failure !== undefined) throw this.failure;
      await once(this.events, 'room');
    }
  }

  /** Nothing to flush: see the module comment. */
  sync(): Promise<void> {
    return Promise.resolve();
  }

  /** Also wakes a writer waiting for room in the queue. */
  override fail(err: Error): void {
    super.fail(err);
    this.events.emit('room');
  }

  /** The whole image from byte 0, waiting for bytes not yet received. */
  reader(): Readable {
    const reader = new Readable({
      highWaterMark: 1 << 20,
      read: (): void => {
        this.#readerWaiting = true;
        this.#feed();
      },
    });
    this.#reader = reader;
    return reader;
  }

  /** Gives a waiting reader what is queued, its end, or the failure. */
  #feed(): void {
    const reader = this.#reader;
    if (reader === undefined || !this.#readerWaiting) return;
    if (this.failure !== undefined) {
      this.#readerWaiting = false;
      reader.destroy(this.failure);
    } else if (this.#queue.length > 0) {
      // Handed down as received, uncopied: the qcow2 converter reads across chunks and the raw
      // writer batches contiguous data into one writev (ADR 0033). The journal keeps nothing
      // it passed on, so the last consumer may free each chunk once written (ADR 0034).
      const chunks = this.#queue.splice(0);
      this.#queued = 0;
      this.#readerWaiting = false;
      this.events.emit('room');
      for (const c of chunks) {
        handOver(c);
        reader.push(c);
      }
    } else if (this.completeMark) {
      this.#readerWaiting = false;
      reader.push(null);
    }
  }

  dispose(): Promise<void> {
    this.fail(new CdiError(ErrorCodes.Aborted, 'upload discarded'));
    this.#queue.length = 0;
    this.#queued = 0;
    return Promise.resolve();
  }
}
