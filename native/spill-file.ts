// SPDX-License-Identifier: Apache-2.0
/**
 * The stream converter's spill file: image bytes whose role was not known when they streamed by
 * (qcow2 clusters whose L2 entry had not been seen yet, block-map bytes that came before the map),
 * kept by host offset. All-zero blocks are only
 * indexed, never written. Created lazily; `close` deletes it.
 */
import { randomBytes } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

import { CdiError, ErrorCodes } from '../common/errors.js';

/** Granularity of the all-zero test. */
const ZERO_BLOCK = 64 * 1024;
const ZEROS = Buffer.alloc(ZERO_BLOCK);

interface SpillEntry {
  readonly host: number;
  readonly length: number;
  /** Offset in the spill file, or -1 when the bytes are all zero. */
  readonly spillOffset: number;
}

/** Host ranges kept aside, readable back by host offset. */
export class SpillFile {
  readonly #dir: string;
  #handle: FileHandle | undefined;
  #path: string | undefined;
  #size = 0;
  readonly #entries: SpillEntry[] = [];

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Bytes written to disk so far. */
  get spilledBytes(): number {
    return this.#size;
  }

  /** Keeps `data`, the host bytes at `host`; ranges must arrive in increasing host order. */
  async add(host: number, data: Buffer): Promise<void> {
    for (let off = 0; off < data.length; off += ZERO_BLOCK) {
      const piece = data.subarray(off, Math.min(data.length, off + ZERO_BLOCK));
      if (ZEROS.subarray(0, piece.length).equals(piece)) {
        this.#entries.push({ host: host + off, length: piece.length, spillOffset: -1 });
        continue;
      }
      const handle = await this.#open();
      await handle.write(piece, 0, piece.length, this.#size);
      this.#entries.push({ host: host + off, length: piece.length, spillOffset: this.#size });
      this.#size += piece.length;
    }
  }

  /**
   * Reads host bytes back. Bytes at or past `streamEnd` read as zeros; other bytes that were not
   * kept mean the image reuses metadata bytes as data: refused.
   */
  async read(host: number, length: number, streamEnd: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    let pos = host;
    const end = host + length;
    let i = this.#find(host);
    while (pos < Math.min(end, streamEnd)) {
      const e = this.#entries[i];
      if (e === undefined || e.host > pos || e.host + e.length <= pos) {
        throw new CdiError(
          ErrorCodes.ImageInvalid,
          `host bytes at offset ${pos} are referenced after they streamed by as image metadata`,
        );
      }
      const n = Math.min(end, e.host + e.length) - pos;
      if (e.spillOffset >= 0 && this.#handle !== undefined) {
        await this.#handle.read(out, pos - host, n, e.spillOffset + (pos - e.host));
      }
      pos += n;
      i++;
    }
    return out;
  }

  /** Deletes the file. Idempotent. */
  async close(): Promise<void> {
    const handle = this.#handle;
    const path = this.#path;
    this.#handle = undefined;
    this.#path = undefined;
    if (handle !== undefined) await handle.close();
    if (path !== undefined) await unlink(path).catch(() => undefined);
  }

  /** Index of the last entry starting at or before `host`. */
  #find(host: number): number {
    let lo = 0;
    let hi = this.#entries.length - 1;
    let best = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#entries[mid]?.host ?? Number.POSITIVE_INFINITY) <= host) {
        best = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return best;
  }

  async #open(): Promise<FileHandle> {
    if (this.#handle === undefined) {
      this.#path = join(
        this.#dir,
        `cdi-qcow2-spill-${process.pid}-${randomBytes(6).toString('hex')}`,
      );
      this.#handle = await open(this.#path, 'wx+', 0o600);
      // Unlinked at close; a crash leaves it in the scratch dir, which the pod discards.
    }
    return this.#handle;
  }
}
