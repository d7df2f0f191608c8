// SPDX-License-Identifier: Apache-2.0
/**
 * The sequential qcow2 converter: a Writable fed the image bytes in order (a decompressed download,
 * an upload, a registry layer). Bytes are gathered into windows of {@link WINDOW_BYTES}, kept as
 * the chunks they arrived in (window-parts.ts: data reaches the native workers uncopied); in each
 * window the metadata (header, L1, the L2 tables it holds) is mapped first, then every data or
 * compressed cluster whose L2 entry is known is written straight to the target. Bytes whose role
 * is not known yet go to a spill file (spill-file.ts) and are resolved at the end, so qcow2
 * streams with no scratch volume. Items that cross the window end are carried to the next one.
 *
 * Backpressure: `_write` calls back only after the window is processed and its chunks are
 * queued on the bounded work pool, so memory stays at a few windows.
 */
import { CdiError, ErrorCodes } from '../common/errors.js';
import type { Binding, Qcow2Map, RawQcow2Info } from './binding.js';
import { throwIfRefused } from './errors.js';
import { ExtentKind, extentsOf, type Extent } from './extents.js';
import { headerBytesNeeded, toQcow2Info } from './qcow2-map.js';
import { ItemWriter } from './random-access.js';
import type { ConvertOptions, ConvertStats, Qcow2Info } from './types.js';
import { StreamConverterBase, takeWindowExtents } from './stream-base.js';
import { WindowParts } from './window-parts.js';

/** Bytes gathered before a window is processed. */
export const WINDOW_BYTES = 4 * 1024 * 1024;
/** L2 entry bits (qcow2 spec): compressed flag and standard cluster offset. */
const L2_COMPRESSED = 1n << 62n;
const L2_OFFSET_MASK = 0x00fffffffffffe00n;
/** Offset bits of a refcount table entry. */
const REFCOUNT_OFFSET_MASK = 0xfffffffffffffe00n;
/** Image size assumed for validation while the real one is unknown (checked at the end). */
const UNKNOWN_SIZE = Number.MAX_SAFE_INTEGER;

/**
 * The host bytes a chunk's extents read, [first, last), clipped to the stream's `end` (bytes
 * past the end of the image read as zeros).
 */
function hostSpan(chunkExtents: Float64Array, end: number): [number, number] {
  let from = end;
  let to = 0;
  for (const e of extentsOf(chunkExtents)) {
    if (e.kind === ExtentKind.Zero) continue;
    from = Math.min(from, e.host);
    to = Math.max(to, Math.min(end, e.host + e.hostLength));
  }
  return from < to ? [from, to] : [end, end];
}

/** Options of {@link Qcow2StreamConverter}. */
export interface StreamConvertOptions extends ConvertOptions<Qcow2Info> {
  /** Directory for the spill file (deleted at the end). */
  readonly spillDir: string;
  /** Image length when known (Content-Length); tightens validation. */
  readonly size?: number;
}

type Span = [start: number, end: number];

/** What the header gave: set together once it is read. */
interface Opened {
  readonly map: Qcow2Map;
  readonly raw: RawQcow2Info;
  readonly writer: ItemWriter;
}

/** See the module comment. */
export class Qcow2StreamConverter extends StreamConverterBase {
  readonly #binding: Binding;
  readonly #options: StreamConvertOptions;
  readonly #window = new WindowParts();
  #fresh = 0;
  #opened: Opened | undefined;
  #l1Pending = false;
  #refcountPending = false;
  /** L2 tables not seen yet: host offset to the L1 indexes naming it (hostile images share). */
  readonly #tables = new Map<number, number[]>();
  /** Known data/compressed extents not written yet; kept sorted by host. */
  #expected: Extent[] = [];
  #expectedSorted = true;
  readonly #deferredTables: [offset: number, index: number][] = [];
  readonly #deferred: Extent[] = [];
  /** Host spans already accounted for (metadata, written data) at or past the window start. */
  #used: Span[] = [];

  constructor(binding: Binding, options: StreamConvertOptions) {
    super('qcow2', options);
    this.#binding = binding;
    this.#options = options;
  }

  /** The header's facts; only called once the header has been read. */
  #state(): Opened {
    if (this.#opened === undefined) {
      throw new CdiError(ErrorCodes.Internal, 'qcow2 stream: header used before it was read');
    }
    return this.#opened;
  }

  protected override accept(chunk: Buffer): boolean {
    this.#window.push(chunk);
    this.#fresh += chunk.length;
    return this.#fresh >= WINDOW_BYTES;
  }

  protected override async finishStream(): Promise<ConvertStats> {
    await this.processWindow(true);
    if (this.#opened === undefined) {
      throw new CdiError(ErrorCodes.ImageInvalid, 'image too short for a qcow2 header');
    }
    const end = this.#window.end;
    this.#checkComplete(end);
    await this.#resolveDeferred(end);
    await this.pool.drain();
    await this.spill.close();
    this.stats.spilledBytes = this.spill.spilledBytes;
    return this.stats.result();
  }

  /** Processes the gathered bytes as one window. */
  protected override async processWindow(eof: boolean): Promise<void> {
    this.#fresh = 0;
    const data = this.#window;
    const { start, end } = data;
    if (this.#opened === undefined && !(await this.#openMap(data, eof))) return;
    const { raw } = this.#state();
    this.#mapMetadata(data, start, end);
    let carry = end;
    for (const [offset] of this.#tables) if (offset < end) carry = Math.min(carry, offset);
    if (this.#l1Pending && raw.l1Offset < end) carry = Math.min(carry, raw.l1Offset);
    if (this.#refcountPending && raw.refcountTableOffset < end)
      carry = Math.min(carry, raw.refcountTableOffset);
    carry = Math.min(carry, await this.#writeExpected(data, end, eof));
    if (eof) carry = end;
    await this.#spillUnused(data, start, carry);
    data.dropBefore(carry);
    this.#used = this.#used.filter((s) => s[1] > carry);
  }

  async #openMap(data: WindowParts, eof: boolean): Promise<boolean> {
    const size = this.#options.size ?? UNKNOWN_SIZE;
    if (data.length < 512 && !eof) return false;
    const need = headerBytesNeeded(
      data.slice(0, Math.min(512, data.end)),
      eof ? data.length : size,
    );
    if (data.length < need && !eof) return false;
    const map = new this.#binding.Qcow2Map(
      data.slice(0, Math.min(need, data.end)),
      eof ? data.length : size,
    );
    const raw = map.info();
    throwIfRefused(raw);
    await this.#options.prepareTarget?.(toQcow2Info(raw));
    const writer = new ItemWriter({
      binding: this.#binding,
      map,
      options: this.#options,
      stats: this.stats,
      total: raw.virtualSize,
    });
    this.#opened = { map, raw, writer };
    this.#l1Pending = raw.l1Entries > 0;
    this.#refcountPending = raw.refcountTableBytes > 0;
    this.#used.push([0, raw.clusterSize]);
    if (raw.refcountTableBytes > 0) {
      this.#used.push([raw.refcountTableOffset, raw.refcountTableOffset + raw.refcountTableBytes]);
    }
    return true;
  }

  /** Maps the L1 table and every L2 table lying fully inside the window. */
  #mapMetadata(data: WindowParts, start: number, end: number): void {
    const { raw, map } = this.#state();
    const coverage = raw.l2Entries * raw.clusterSize;
    const l1End = raw.l1Offset + raw.l1Entries * 8;
    if (this.#l1Pending && raw.l1Offset >= start && l1End <= end) {
      this.#l1Pending = false;
      this.#used.push([raw.l1Offset, l1End]);
      const l2 = map.parseL1(data.slice(raw.l1Offset, l1End));
      for (const [i, offset] of l2.entries()) {
        if (offset === 0) {
          const g = i * coverage;
          this.#queueZero(g, Math.min(coverage, raw.virtualSize - g));
        } else if (offset >= start) {
          const indexes = this.#tables.get(offset);
          if (indexes === undefined) this.#tables.set(offset, [i]);
          else indexes.push(i);
        } else {
          this.#deferredTables.push([offset, i]);
        }
      }
    }
    this.#claimRefcountBlocks(data, start, end);
    const ready = [...this.#tables].filter(([o]) => o >= start && o + raw.clusterSize <= end);
    ready.sort((a, b) => a[0] - b[0]);
    for (const [offset, indexes] of ready) {
      this.#tables.delete(offset);
      this.#used.push([offset, offset + raw.clusterSize]);
      const table = data.slice(offset, offset + raw.clusterSize);
      for (const index of indexes) this.#addExtents(map.mapL2(index, table), start);
      this.#claimUnreadClusters(table, start);
    }
  }

  /**
   * Claims clusters an L2 table allocates but that are never read: zero clusters that keep their
   * allocation (`write -z` on v3) and, with extended L2, the unused subclusters. Their bytes
   * need no spilling.
   */
  #claimUnreadClusters(table: Buffer, start: number): void {
    const { raw } = this.#state();
    const step = raw.extendedL2 ? 16 : 8;
    for (let off = 0; off + step <= table.length; off += step) {
      const entry = table.readBigUInt64BE(off);
      if ((entry & L2_COMPRESSED) !== 0n) continue;
      const host = Number(entry & L2_OFFSET_MASK);
      if (host < start || host === 0) continue;
      const unread = raw.extendedL2
        ? table.readUInt32BE(off + 12) !== 0xffffffff
        : (entry & 1n) === 1n;
      if (unread) this.#used.push([host, host + raw.clusterSize]);
    }
  }

  /** Refcount blocks are metadata we never need: claim them so they are not spilled. */
  #claimRefcountBlocks(data: WindowParts, start: number, end: number): void {
    const { raw, map } = this.#state();
    const tableEnd = raw.refcountTableOffset + raw.refcountTableBytes;
    if (!this.#refcountPending || raw.refcountTableOffset < start || tableEnd > end) return;
    this.#refcountPending = false;
    const table = data.slice(raw.refcountTableOffset, tableEnd);
    if (raw.l1Entries > 0) map.claimRefcountTable(table);
    for (let off = 0; off + 8 <= table.length; off += 8) {
      const block = Number(table.readBigUInt64BE(off) & REFCOUNT_OFFSET_MASK);
      if (block !== 0 && block >= start) this.#used.push([block, block + raw.clusterSize]);
    }
  }

  /**
   * True once no table still to be mapped can name a byte: the L1 table is read and every L2
   * table it names has been mapped. From then on, bytes nothing claimed are never read (qemu
   * would not read them either) and need no spilling. Refcounts are not trusted for this: qemu
   * does not read them to convert, so a cluster they call free may still be data.
   */
  #everyTableMapped(): boolean {
    return !this.#l1Pending && this.#tables.size === 0 && this.#deferredTables.length === 0;
  }

  #addExtents(ex: Float64Array, start: number): void {
    for (const e of extentsOf(ex)) {
      if (e.kind === ExtentKind.Zero) {
        this.#queueZero(e.guest, e.length);
      } else if (e.host >= start) {
        this.#expected.push(e);
        this.#expectedSorted = false;
      } else {
        this.#deferred.push(e);
      }
    }
  }

  /** Writes the expected extents whose bytes are in the window; returns where carry starts. */
  async #writeExpected(data: WindowParts, end: number, eof: boolean): Promise<number> {
    if (!this.#expectedSorted) {
      this.#expected.sort((a, b) => a.host - b.host);
      this.#expectedSorted = true;
    }
    const { batch, carry } = takeWindowExtents(this.#expected, end, eof);
    for (const e of batch) this.#used.push([e.host, Math.min(end, e.host + e.hostLength)]);
    await this.runChunks(this.#state().writer, batch, (ex) => {
      const [from, to] = hostSpan(ex, end);
      return data.lend(from, to);
    });
    return carry ?? end;
  }

  #queueZero(offset: number, length: number): void {
    if (length === 0) return;
    const { writer } = this.#state();
    void this.pool.run(() => writer.zero(offset, length)).catch(() => undefined);
  }

  /** Spills the bytes of [start, stop) that nothing claimed, unless no table can name them. */
  async #spillUnused(data: WindowParts, start: number, stop: number): Promise<void> {
    if (this.#everyTableMapped()) return;
    const used = this.#used
      .map(([a, b]): Span => [Math.max(a, start), Math.min(b, stop)])
      .filter(([a, b]) => a < b)
      .sort((x, y) => x[0] - y[0]);
    let pos = start;
    for (const [a, b] of used) {
      if (a > pos) await this.spill.add(pos, data.slice(pos, a));
      pos = Math.max(pos, b);
    }
    if (pos < stop) await this.spill.add(pos, data.slice(pos, stop));
  }

  #checkComplete(end: number): void {
    const truncated = (what: string, offset: number): CdiError =>
      new CdiError(
        ErrorCodes.ImageInvalid,
        `image truncated: ${what} at offset ${offset} lies past the end of the stream (${end} bytes)`,
      );
    if (this.#l1Pending) throw truncated('l1 table', this.#state().raw.l1Offset);
    if (this.#refcountPending)
      throw truncated('refcount table', this.#state().raw.refcountTableOffset);
    for (const [offset] of this.#tables) throw truncated('l2 table', offset);
    const first = this.#expected[0];
    if (first !== undefined) throw truncated('data cluster', first.host);
  }

  /** Converts what streamed by before its L2 entry was known, reading it from the spill file. */
  async #resolveDeferred(end: number): Promise<void> {
    const { raw, map, writer } = this.#state();
    for (let t = this.#deferredTables.pop(); t !== undefined; t = this.#deferredTables.pop()) {
      const [offset, index] = t;
      const l2 = await this.spill.read(offset, raw.clusterSize, end);
      this.#addExtents(map.mapL2(index, l2), Number.POSITIVE_INFINITY);
    }
    await this.runChunks(writer, this.#deferred.splice(0), (ex) => this.fromSpill(ex, end));
  }
}
