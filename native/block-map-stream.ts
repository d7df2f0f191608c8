// SPDX-License-Identifier: Apache-2.0
/**
 * The sequential converter for VDI, VHD, VHDX and VMDK: a Writable fed the image bytes in order.
 *
 * Block-map images (VDI, dynamic VHD, monolithicSparse VMDK, VHDX): the first bytes give the
 * header; the tables the map needs are gathered as they stream by (from the spill file when
 * they lie behind), and every byte that arrives before the map is complete is spilled (in real
 * images that is only the metadata at the start). Once the map is known, each block is written
 * at its guest offset as its bytes arrive, in file order; blocks that streamed by earlier are
 * read back from the spill file at the end.
 *
 * streamOptimized VMDK: each grain is written at the sector its marker names as it streams by;
 * the metadata (header area, metadata markers, what follows the end-of-stream marker) is spilled,
 * and at the end the footer's grain directory and tables must place exactly the grains the
 * markers placed (vmdk-grain-check.ts), else the image is refused.
 *
 * Backpressure: `_write` calls back only after the window is processed and its chunks are queued
 * on the bounded work pool.
 */
import { CdiError, ErrorCodes } from '../common/errors.js';
import type { Binding, ImageMap, RawImageInfo } from './binding.js';
import { MAP_BATCH, neededRanges, toDiskImageInfo, type BlockMapSpec } from './block-map.js';
import { throwIfRefused } from './errors.js';
import { ExtentKind, extentsOf, type Extent } from './extents.js';
import { ItemWriter } from './random-access.js';
import type { BlockMapFormat, ConvertOptions, ConvertStats, DiskImageInfo } from './types.js';
import { joinParts, StreamConverterBase, takeWindowExtents } from './stream-base.js';
import { checkGrainsAgainstTables, GrainLog } from './vmdk-grain-check.js';

/** Bytes gathered before a window is processed once the map is known. */
const WINDOW_BYTES = 4 * 1024 * 1024;
/** VMDK marker types (metadata markers have a zero size field). */
const MARKER_EOS = 0;
const MARKER_FOOTER = 3;

/** Options of {@link BlockMapStreamConverter}. */
export interface BlockMapStreamOptions extends ConvertOptions<DiskImageInfo> {
  /** Directory for the spill file (deleted at the end). */
  readonly spillDir: string;
  /** Image length when known (Content-Length); accepted for symmetry with qcow2, unused. */
  readonly size?: number;
}

/** The header's map and its facts (updated once the map is complete). */
interface Opened {
  readonly map: ImageMap;
  raw: RawImageInfo;
}

/** A table range being gathered from the stream. */
interface Gather {
  readonly offset: number;
  readonly buf: Buffer;
  /** Bytes of `buf` filled; complete at `buf.length`. */
  filled: number;
}

/** See the module comment. */
export class BlockMapStreamConverter extends StreamConverterBase {
  readonly #binding: Binding;
  readonly #format: BlockMapFormat;
  readonly #spec: BlockMapSpec;
  readonly #options: BlockMapStreamOptions;
  #parts: Buffer[] = [];
  #partsLen = 0;
  /** Stream offset of the first byte in #parts. */
  #pos = 0;
  #opened: Opened | undefined;
  #writer: ItemWriter | undefined;
  #gathers: Gather[] = [];
  /** True once the block map is complete (every byte before that point was spilled). */
  #mapped = false;
  /** Data extents still to come, sorted by host offset. */
  #expected: Extent[] = [];
  /** Data extents that streamed by before the map was known. */
  #deferred: Extent[] = [];
  /** streamOptimized: offset of the next marker, grains seen, and whether the stream ended. */
  #marker = 0;
  #seen = new Uint8Array(0);
  #ended = false;
  /** streamOptimized: the grains in stream order, the head, and the end of the metadata run. */
  readonly #grains = new GrainLog();
  #head = Buffer.alloc(0);
  /** Bytes before this offset that are not grains are metadata to keep (Infinity after EOS). */
  #metadataEnd = 0;
  /** Zero runs handed to the pool (each settles once its job has started). */
  #queued: Promise<void>[] = [];

  constructor(binding: Binding, spec: BlockMapSpec, options: BlockMapStreamOptions) {
    super(spec.format, options);
    this.#spec = spec;
    this.#binding = binding;
    this.#format = spec.format;
    this.#options = options;
  }

  /** The header's map; only called once the header has been read. */
  #state(): Opened {
    if (this.#opened === undefined) {
      throw new CdiError(
        ErrorCodes.Internal,
        `${this.#format} stream: header used before it was read`,
      );
    }
    return this.#opened;
  }

  /** The writer; only called once the target is prepared. */
  #target(): ItemWriter {
    if (this.#writer === undefined) {
      throw new CdiError(
        ErrorCodes.Internal,
        `${this.#format} stream: written before the target was prepared`,
      );
    }
    return this.#writer;
  }

  protected override accept(chunk: Buffer): boolean {
    this.#parts.push(chunk);
    this.#partsLen += chunk.length;
    const need =
      this.#opened === undefined
        ? this.#spec.headBytes
        : this.#mapped || this.#opened.raw.compressed
          ? WINDOW_BYTES
          : 0;
    return this.#partsLen >= need;
  }

  protected override async finishStream(): Promise<ConvertStats> {
    await this.processWindow(true);
    if (this.#opened === undefined) {
      throw new CdiError(ErrorCodes.ImageInvalid, `image too short for a ${this.#format} header`);
    }
    const end = this.#pos + this.#partsLen;
    if (this.#opened.raw.compressed) {
      const { raw } = this.#opened;
      await checkGrainsAgainstTables({
        binding: this.#binding,
        spec: this.#spec,
        head: this.#head,
        spill: this.spill,
        end,
        grains: this.#grains,
        geometry: raw,
        stats: this.stats,
      });
      this.#zeroUnseen();
    } else {
      if (!this.#mapped) {
        throw new CdiError(
          ErrorCodes.ImageInvalid,
          `image truncated: block table at offset ${this.#gathers[0]?.offset ?? end} lies past the end of the stream (${end} bytes)`,
        );
      }
      // What is left starts at or past the end: the rest of a block begun inside the file reads
      // as zeros (as random access reads it); a block the file does not hold is refused.
      for (const e of this.#expected.splice(0)) {
        this.#checkBlocksInFile(e, end);
        this.#queueZero(e.guest, e.length);
      }
      await this.#resolveDeferred(end);
    }
    await Promise.all(this.#queued.splice(0));
    await this.pool.drain();
    await this.spill.close();
    this.stats.spilledBytes = this.spill.spilledBytes;
    return this.stats.result();
  }

  /** Takes the gathered bytes as one buffer starting at #pos. */
  #take(): { data: Buffer; start: number } {
    const data = joinParts(this.#parts);
    const start = this.#pos;
    this.#parts = [];
    this.#partsLen = 0;
    this.#pos += data.length;
    return { data, start };
  }

  protected override async processWindow(eof: boolean): Promise<void> {
    if (this.#opened === undefined) {
      if (this.#partsLen < this.#spec.headBytes && !eof) return;
      await this.#open();
    }
    if (this.#state().raw.compressed) {
      await this.#processMarkers(eof);
      return;
    }
    const { data, start } = this.#take();
    if (data.length === 0) return;
    if (this.#mapped) {
      await this.#writeExpected(data, start, eof);
      return;
    }
    await this.spill.add(start, data);
    await this.#gather(data, start);
    if (this.#state().map.needs().length === 0) await this.#startMapped(start + data.length);
  }

  async #open(): Promise<void> {
    const head = joinParts(this.#parts);
    this.#parts = [head];
    // The length stays unknown to the parser even with Content-Length: the footer (VMDK
    // GD_AT_END) is not at hand, and truncation shows up at the end of the stream anyway.
    const map = new this.#binding.ImageMap(
      this.#format,
      head.subarray(0, this.#spec.headBytes),
      Buffer.alloc(0),
      -1,
    );
    const raw = map.info();
    throwIfRefused(raw);
    if (raw.fixed) {
      throw new CdiError(
        ErrorCodes.FormatUnsupported,
        'a fixed vhd has its footer at the end; it streams as a raw image',
      );
    }
    this.#opened = { map, raw };
    // Block-map formats prepare the target once the map is complete (a VHDX learns its size from
    // its metadata region); streamOptimized VMDK writes from the first grain on.
    if (raw.compressed) await this.#prepare(raw);
    if (raw.compressed) {
      if (raw.grainOffset < 512) {
        throw new CdiError(
          ErrorCodes.ImageInvalid,
          `vmdk grain offset ${raw.grainOffset} lies inside the header`,
        );
      }
      this.#marker = raw.grainOffset;
      this.#metadataEnd = raw.grainOffset;
      this.#head = Buffer.from(head.subarray(0, this.#spec.headBytes));
      this.#seen = new Uint8Array(raw.blockCount);
    }
  }

  async #prepare(raw: RawImageInfo): Promise<void> {
    throwIfRefused(raw);
    await this.#options.prepareTarget?.(toDiskImageInfo(raw));
    this.#writer = new ItemWriter({
      binding: this.#binding,
      map: this.#state().map,
      options: this.#options,
      stats: this.stats,
      total: raw.virtualSize,
    });
  }

  /** Copies the parts of the needed tables inside `data` (or behind it, from the spill file). */
  async #gather(data: Buffer, start: number): Promise<void> {
    const { map } = this.#state();
    const end = start + data.length;
    for (;;) {
      const known = new Set(this.#gathers.map((g) => g.offset));
      for (const [offset, length] of neededRanges(map)) {
        if (known.has(offset)) continue;
        const g: Gather = { offset, buf: Buffer.alloc(length), filled: 0 };
        // Bytes behind this window are in the spill file (everything before the map is spilled).
        const behind = Math.min(g.buf.length, Math.max(0, start - offset));
        if (behind > 0) {
          (await this.spill.read(offset, behind, start)).copy(g.buf, 0);
          g.filled = behind;
        }
        this.#gathers.push(g);
      }
      let fed = false;
      for (const g of this.#gathers) {
        const from = g.offset + g.filled;
        if (g.filled < g.buf.length && from >= start && from < end) {
          const n = Math.min(g.buf.length - g.filled, end - from);
          data.copy(g.buf, g.filled, from - start, from - start + n);
          g.filled += n;
        }
        if (g.filled === g.buf.length) {
          map.feed(g.offset, g.buf);
          fed = true;
        }
      }
      this.#gathers = this.#gathers.filter((g) => g.filled < g.buf.length);
      if (!fed) return;
    }
  }

  /** The map is complete: sorts the blocks into written-later, from-spill, and zero. */
  async #startMapped(spilledEnd: number): Promise<void> {
    this.#mapped = true;
    const opened = this.#state();
    const raw = opened.map.info();
    opened.raw = raw;
    await this.#prepare(raw);
    for (let first = 0; first < raw.blockCount; first += MAP_BATCH) {
      for (const { guest, length, kind, host } of extentsOf(
        opened.map.mapBlocks(first, MAP_BATCH),
      )) {
        if (kind === ExtentKind.Zero) {
          this.#queueZero(guest, length);
        } else if (host + length <= spilledEnd) {
          this.#deferred.push({ guest, length, kind, host, hostLength: length });
        } else if (host >= spilledEnd) {
          this.#expected.push({ guest, length, kind, host, hostLength: length });
        } else {
          const part = spilledEnd - host;
          this.#deferred.push({ guest, length: part, kind, host, hostLength: part });
          this.#expected.push({
            guest: guest + part,
            length: length - part,
            kind,
            host: spilledEnd,
            hostLength: length - part,
          });
        }
      }
    }
    this.#expected.sort((a, b) => a.host - b.host);
  }

  #queueZero(offset: number, length: number): void {
    if (length === 0) return;
    const writer = this.#target();
    // Remembered so finishStream waits until every queued run has started before draining the pool.
    this.#queued.push(this.pool.run(() => writer.zero(offset, length)).catch(() => undefined));
  }

  /**
   * Refuses an extent holding a block the random-access converter refuses at the end of the
   * file `end`: one starting at or past it (VDI, VMDK), or not wholly inside it (VHD, VHDX).
   */
  #checkBlocksInFile(e: Extent, end: number): void {
    const { guest, length, host } = e;
    const bs = this.#state().raw.blockSize;
    const whole = this.#format === 'vhd' || this.#format === 'vhdx';
    for (let g = Math.floor(guest / bs) * bs; g < guest + length; g += bs) {
      const blockHost = host + (g - guest);
      if (g < guest && !whole) continue; // begun before this extent, inside the file
      if (whole ? blockHost + bs > end : blockHost >= end) {
        throw new CdiError(
          ErrorCodes.ImageInvalid,
          `image truncated: block at offset ${Math.max(blockHost, host)} lies past the end of the stream (${end} bytes)`,
        );
      }
    }
  }

  /** Writes the expected extents whose bytes are in the window (past EOF: zeros). */
  async #writeExpected(data: Buffer, start: number, eof: boolean): Promise<void> {
    const end = start + data.length;
    // At the end of the stream an extent reaching past it is checked as random access checks
    // its blocks; the part past the end then reads as zeros.
    if (eof)
      for (const e of this.#expected)
        if (e.host < end && e.host + e.length > end) this.#checkBlocksInFile(e, end);
    const { batch } = takeWindowExtents(this.#expected, end, eof);
    const window = { pieces: [data], pieceOffsets: [start] };
    await this.runChunks(this.#target(), batch, () => window);
  }

  async #resolveDeferred(end: number): Promise<void> {
    await this.runChunks(this.#target(), this.#deferred.splice(0), (ex) => this.fromSpill(ex, end));
  }

  /** streamOptimized: walks the markers in the gathered bytes, writing each grain. */
  async #processMarkers(eof: boolean): Promise<void> {
    const { data, start } = this.#take();
    const end = start + data.length;
    const { raw } = this.#state();
    const grains: Extent[] = [];
    await this.#keepMetadata(data, start, start);
    let pos = this.#marker;
    while (!this.#ended && pos + 16 <= end) {
      const rel = pos - start;
      const lba = Number(data.readBigUInt64LE(rel));
      const size = data.readUInt32LE(rel + 8);
      if (size === 0) {
        const type = data.readUInt32LE(rel + 12);
        if (type === MARKER_EOS) {
          this.#ended = true;
          // The footer and anything after it: random access reads the file's last bytes.
          this.#metadataEnd = Number.POSITIVE_INFINITY;
          await this.#keepMetadata(data, start, pos);
          break;
        }
        if (type > MARKER_FOOTER) {
          throw new CdiError(
            ErrorCodes.ImageInvalid,
            `unknown vmdk marker type ${type} at offset ${pos}`,
          );
        }
        // GT, GD or footer: `lba` counts the sectors of metadata after the marker sector.
        this.#metadataEnd = pos + 512 + lba * 512;
        await this.#keepMetadata(data, start, pos);
        pos = this.#metadataEnd;
        continue;
      }
      if (size > 2 * raw.blockSize) {
        throw new CdiError(
          ErrorCodes.ImageInvalid,
          `vmdk grain marker at offset ${pos} announces ${size} compressed bytes for a ${raw.blockSize}-byte grain`,
        );
      }
      if (pos + 12 + size > end) break;
      const grainSectors = raw.blockSize / 512;
      const index = lba / grainSectors;
      if (!Number.isInteger(index) || index >= raw.blockCount) {
        throw new CdiError(
          ErrorCodes.ImageInvalid,
          `vmdk grain marker at offset ${pos} names sector ${lba}, not a grain of the disk`,
        );
      }
      if (this.#seen[index] === 1) {
        throw new CdiError(
          ErrorCodes.ImageInvalid,
          `vmdk grain for sector ${lba} appears twice (again at offset ${pos})`,
        );
      }
      this.#seen[index] = 1;
      this.#grains.add(index, pos);
      const guest = index * raw.blockSize;
      const length = Math.min(raw.blockSize, raw.virtualSize - guest);
      grains.push({
        guest,
        length,
        kind: ExtentKind.MarkerGrain,
        host: pos,
        hostLength: 12 + size,
      });
      pos = Math.ceil((pos + 12 + size) / 512) * 512;
    }
    this.#marker = pos;
    const window = { pieces: [data], pieceOffsets: [start] };
    await this.runChunks(this.#target(), grains, () => window);
    if (this.#ended || pos >= end) return;
    if (eof) {
      throw new CdiError(
        ErrorCodes.ImageInvalid,
        `image truncated: vmdk stream ends inside the grain at offset ${pos} (${end} bytes)`,
      );
    }
    // Keep the incomplete marker or grain for the next window.
    this.#parts = [data.subarray(pos - start)];
    this.#partsLen = end - pos;
    this.#pos = pos;
  }

  /**
   * streamOptimized: spills the window's bytes in [from, #metadataEnd) (the header area, a
   * metadata marker and its payload, everything after the end of stream), so that the footer's
   * tables can be read back at the end. Windows arrive in order and `from` only grows.
   */
  async #keepMetadata(data: Buffer, start: number, from: number): Promise<void> {
    const to = Math.min(start + data.length, this.#metadataEnd);
    if (to > from) await this.spill.add(from, data.subarray(from - start, to - start));
  }

  /** streamOptimized: makes the grains no marker carried read as zeros (block targets). */
  #zeroUnseen(): void {
    const { raw } = this.#state();
    const seen = this.#seen;
    let runStart = -1;
    for (let i = 0; i <= seen.length; i++) {
      if (i < seen.length && seen[i] === 0) {
        if (runStart < 0) runStart = i;
      } else if (runStart >= 0) {
        const offset = runStart * raw.blockSize;
        this.#queueZero(offset, Math.min(raw.virtualSize, i * raw.blockSize) - offset);
        runStart = -1;
      }
    }
  }
}
