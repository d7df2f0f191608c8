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
import { journalAppender, JournalProgress, type Journal } from './resumable.js';

/** Bytes queued before the request is paused: a few network windows. */
export const MEMORY_JOURNAL_LIMIT = 8 << 20;

/** See the module comment. */
export class MemoryJournal extends JournalProgress implements Journal {
  readonly #limit: number;
  readonly #queue: Buffer[] = [];
  #queued = 0;

  constructor(options: { readonly limit?: number } = {}) {
    super();
    this.#limit = options.limit ?? MEMORY_JOURNAL_LIMIT;
  }

  /** Everything received is held by the process until the pipeline consumed it. */
  get durable(): number {
    return this.receivedBytes;
  }
  /** Bytes waiting for the pipeline. */
  get queued(): number {
    return this.#queued;
  }

  /** Queues each chunk; the write callback waits while the queue is over the limit. */
  appender(): Writable {
    return journalAppender({
      highWaterMark: 64 * 1024,
      total: () => this.totalBytes,
      received: () => this.receivedBytes,
      append: (chunks, length) => {
        this.#queue.push(...chunks);
        this.#queued += length;
        this.receivedBytes += length;
        this.events.emit('grow');
        return this.#whenRoom();
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
    const next = (): Promise<Buffer[] | null> => this.#take();
    return new Readable({
      highWaterMark: 1 << 20,
      read(): void {
        next().then(
          (chunks) => {
            if (chunks === null) this.push(null);
            else for (const c of chunks) this.push(c);
          },
          (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
        );
      },
    });
  }

  async #take(): Promise<Buffer[] | null> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (this.#queue.length > 0) {
        // Handed down as received, uncopied: the qcow2 converter reads across chunks and the
        // raw writer batches contiguous data into one writev (ADR XXXX).
        const chunks = this.#queue.splice(0);
        this.#queued = 0;
        this.events.emit('room');
        return chunks;
      }
      if (this.completeMark) return null;
      await once(this.events, 'grow');
    }
  }

  dispose(): Promise<void> {
    this.fail(new CdiError(ErrorCodes.Aborted, 'upload discarded'));
    this.#queue.length = 0;
    this.#queued = 0;
    return Promise.resolve();
  }
}
