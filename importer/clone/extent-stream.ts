// SPDX-License-Identifier: Apache-2.0
/**
 * The wire format of a network clone: a disk as its data extents only (ADR "extent stream").
 *
 *     header   "CDIXTNT1" (8 bytes) | image size (u64 BE)
 *     data     0x01 | offset (u64 BE) | length (u32 BE, 1..MAX_EXTENT_BYTES) | length bytes
 *     end      0x00 | data bytes sent (u64 BE)
 *
 * Extents come in increasing offset order, do not overlap and end within the image; everything
 * not sent reads as zeros. The end record makes a cut stream detectable (TLS already protects the
 * bytes). `encodeExtents` reads a file or device by SEEK_DATA/SEEK_HOLE; `ExtentDecoder` parses
 * chunks as they arrive and hands each data piece to a sink with its offset, never holding more
 * than one network chunk.
 */
import type { FileHandle } from 'node:fs/promises';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { dataExtents } from '../../native/index.js';

/** The stream's first 8 bytes. */
export const EXTENT_MAGIC = Buffer.from('CDIXTNT1', 'latin1');
/** Header: magic and image size. */
export const EXTENT_HEADER_BYTES = 16;
/** The longest data record (the sender splits longer extents). */
export const MAX_EXTENT_BYTES = 4 << 20;
/** Content type of the stream on HTTP. */
export const EXTENT_STREAM_CONTENT_TYPE = 'application/x-cdi-extent-stream';

const TYPE_END = 0x00;
const TYPE_DATA = 0x01;
const DATA_HEADER_BYTES = 1 + 8 + 4;
const END_BYTES = 1 + 8;
/** Extents asked of the kernel per call. */
const EXTENTS_PER_CALL = 1024;

function invalid(message: string): CdiError {
  return new CdiError(ErrorCodes.CloneStreamInvalid, `invalid clone stream: ${message}`, {
    httpStatus: 400,
  });
}

/** The stream header for an image of `size` bytes. */
export function encodeHeader(size: number): Buffer {
  const b = Buffer.alloc(EXTENT_HEADER_BYTES);
  EXTENT_MAGIC.copy(b, 0);
  b.writeBigUInt64BE(BigInt(size), 8);
  return b;
}

/** The header of a data record of `length` bytes at `offset`. */
export function encodeDataHeader(offset: number, length: number): Buffer {
  const b = Buffer.alloc(DATA_HEADER_BYTES);
  b.writeUInt8(TYPE_DATA, 0);
  b.writeBigUInt64BE(BigInt(offset), 1);
  b.writeUInt32BE(length, 9);
  return b;
}

/** The end record. */
export function encodeEnd(dataBytes: number): Buffer {
  const b = Buffer.alloc(END_BYTES);
  b.writeUInt8(TYPE_END, 0);
  b.writeBigUInt64BE(BigInt(dataBytes), 1);
  return b;
}

/** Options of {@link encodeExtents}. */
export interface EncodeOptions {
  readonly handle: FileHandle;
  /** The image size (a file's length, a device's size). */
  readonly size: number;
  readonly signal: AbortSignal;
  /** Called after each data record with the image offset reached and the data bytes sent. */
  readonly onPosition?: (position: number, dataBytes: number) => void;
}

/**
 * Yields the extent stream of an open file or device: header, one record per data piece of at
 * most {@link MAX_EXTENT_BYTES} (each read into a fresh buffer, so backpressure bounds memory),
 * end record.
 */
export async function* encodeExtents(options: EncodeOptions): AsyncGenerator<Buffer> {
  const { handle, size, signal } = options;
  yield encodeHeader(size);
  let sent = 0;
  let cursor = 0;
  while (cursor < size) {
    signal.throwIfAborted();
    const extents = await dataExtents(handle.fd, cursor, size, EXTENTS_PER_CALL);
    if (extents.length === 0) break;
    for (const extent of extents) {
      const end = extent.offset + extent.length;
      for (let at = extent.offset; at < end;) {
        signal.throwIfAborted();
        const length = Math.min(MAX_EXTENT_BYTES, end - at);
        const data = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(data, 0, length, at);
        // A file that shrank underneath: stop at what is there (the header's size still rules).
        if (bytesRead === 0) break;
        yield encodeDataHeader(at, bytesRead);
        yield bytesRead === length ? data : data.subarray(0, bytesRead);
        sent += bytesRead;
        at += bytesRead;
        options.onPosition?.(at, sent);
      }
      cursor = end;
    }
  }
  yield encodeEnd(sent);
}

/** Where the decoder puts what it reads. */
export interface ExtentSink {
  /** Called once with the image size before any data. */
  begin(size: number): Promise<void>;
  /** A piece of data at `offset` (a record may arrive in several pieces). */
  write(offset: number, data: Buffer): Promise<void>;
  /** A range the stream does not carry (reads as zeros), in order, including the tail. */
  hole(offset: number, length: number): Promise<void>;
}

type State =
  | { readonly kind: 'header' }
  | { readonly kind: 'record' }
  | { readonly kind: 'data'; offset: number; remaining: number }
  | { readonly kind: 'done' };

/** What a finished stream carried. */
export interface DecodedStream {
  readonly size: number;
  readonly dataBytes: number;
}

/** Incremental parser of the extent stream; see the module comment. */
export class ExtentDecoder {
  #state: State = { kind: 'header' };
  #pending: Buffer = Buffer.alloc(0);
  #size = 0;
  /** The image offset up to which data or holes were handed on. */
  #cursor = 0;
  #dataBytes = 0;

  constructor(private readonly sink: ExtentSink) {}

  /** Image bytes accounted for so far (progress). */
  get position(): number {
    return this.#cursor;
  }

  get size(): number {
    return this.#size;
  }

  /** Feeds one chunk. */
  async push(chunk: Buffer): Promise<void> {
    let buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = Buffer.alloc(0);
    while (buf.length > 0) {
      const state = this.#state;
      if (state.kind === 'done') throw invalid('bytes after the end record');
      if (state.kind === 'data') {
        const n = Math.min(state.remaining, buf.length);
        await this.sink.write(state.offset, buf.subarray(0, n));
        state.offset += n;
        state.remaining -= n;
        this.#dataBytes += n;
        this.#cursor = state.offset;
        buf = buf.subarray(n);
        if (state.remaining === 0) this.#state = { kind: 'record' };
        continue;
      }
      const need =
        state.kind === 'header'
          ? EXTENT_HEADER_BYTES
          : buf[0] === TYPE_DATA
            ? DATA_HEADER_BYTES
            : END_BYTES;
      if (buf.length < need) {
        this.#pending = Buffer.from(buf);
        return;
      }
      const head = buf.subarray(0, need);
      buf = buf.subarray(need);
      if (state.kind === 'header') await this.#header(head);
      else if (head[0] === TYPE_DATA) await this.#dataRecord(head);
      else await this.#end(head);
    }
  }

  /** Checks that the stream ended with its end record. */
  finish(): DecodedStream {
    if (this.#state.kind !== 'done') {
      const where =
        this.#state.kind === 'header' ? 'before its header' : `at image offset ${this.#cursor}`;
      throw invalid(`the stream ended ${where} without its end record`);
    }
    return { size: this.#size, dataBytes: this.#dataBytes };
  }

  async #header(head: Buffer): Promise<void> {
    if (!head.subarray(0, 8).equals(EXTENT_MAGIC)) throw invalid('not an extent stream');
    const size = Number(head.readBigUInt64BE(8));
    if (!Number.isSafeInteger(size)) throw invalid('image size out of range');
    this.#size = size;
    await this.sink.begin(size);
    this.#state = { kind: 'record' };
  }

  async #dataRecord(head: Buffer): Promise<void> {
    const offset = Number(head.readBigUInt64BE(1));
    const length = head.readUInt32BE(9);
    if (length === 0 || length > MAX_EXTENT_BYTES)
      throw invalid(`extent length ${length} is not within 1..${MAX_EXTENT_BYTES}`);
    if (!Number.isSafeInteger(offset) || offset < this.#cursor)
      throw invalid(`extent at ${offset} is out of order (expected at or after ${this.#cursor})`);
    if (offset + length > this.#size)
      throw invalid(`extent ${offset}+${length} ends past the image size ${this.#size}`);
    if (offset > this.#cursor) await this.sink.hole(this.#cursor, offset - this.#cursor);
    this.#cursor = offset;
    this.#state = { kind: 'data', offset, remaining: length };
  }

  async #end(head: Buffer): Promise<void> {
    if (head[0] !== TYPE_END) throw invalid(`unknown record type ${head[0] ?? -1}`);
    const announced = Number(head.readBigUInt64BE(1));
    if (announced !== this.#dataBytes)
      throw invalid(`the end record counts ${announced} data bytes, ${this.#dataBytes} arrived`);
    if (this.#cursor < this.#size) await this.sink.hole(this.#cursor, this.#size - this.#cursor);
    this.#cursor = this.#size;
    this.#state = { kind: 'done' };
  }
}
