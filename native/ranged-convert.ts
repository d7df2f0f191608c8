// SPDX-License-Identifier: Apache-2.0
/**
 * The random-access conversion engine: reads the header, the L1 table and each L2 table in
 * order, cuts the extents into chunks (chunker.ts) and runs them on the libuv pool through
 * `Qcow2Map.processChunk`, a few at a time, so reads, decompression and writes overlap and both
 * cores decompress. Local files are read by the native workers with pread; other readers are
 * fetched here (coalesced ranges, in parallel) and handed over as buffers.
 */
import { CdiError, ErrorCodes, type ErrorCode } from '../common/errors.js';
import type { Binding, Qcow2Map, RawChunk, RawChunkStats, RawQcow2Info } from './binding.js';
import { Chunker, ExtentKind, hostRanges, type Chunk, type WorkItem } from './chunker.js';
import { throwIfAborted } from './errors.js';
import type { ConvertOptions, ConvertStats, Qcow2Info, RangeReader } from './types.js';
import { WorkPool } from './work-pool.js';

/** qcow2 magic "QFI\xfb". */
const QCOW2_MAGIC = 0x514649fb;
/** Room after the first cluster for a backing file name (qemu allows 1023 bytes). */
const HEADER_SLACK = 1024;
const MIN_CLUSTER_BITS = 9;
const MAX_CLUSTER_BITS = 21;

/** A reader plus, for local files, the descriptor the native workers pread from. */
export interface ImageSource extends RangeReader {
  readonly fd?: number;
}

/** True when `head` starts with the qcow2 magic. */
export function isQcow2Header(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32BE(0) === QCOW2_MAGIC;
}

/** Converts the binding's header facts to the public {@link Qcow2Info}. */
export function toQcow2Info(raw: RawQcow2Info): Qcow2Info {
  return {
    format: 'qcow2',
    version: raw.version === 2 ? 2 : 3,
    virtualSize: raw.virtualSize,
    clusterSize: raw.clusterSize,
    compressionType: raw.compressionType,
    extendedL2: raw.extendedL2,
    dirty: raw.dirty,
    encrypted: raw.encrypted,
    snapshotCount: raw.snapshotCount,
    l1Entries: raw.l1Entries,
    ...(raw.backingFile === undefined ? {} : { backingFile: raw.backingFile }),
    ...(raw.externalDataFile === undefined ? {} : { externalDataFile: raw.externalDataFile }),
    ...(raw.refusal === undefined ? {} : { refusal: { ...raw.refusal } }),
  };
}

/** Bytes of the image needed to parse the header, given its first bytes. */
export function headerBytesNeeded(first: Buffer, size: number): number {
  if (!isQcow2Header(first)) {
    throw new CdiError(ErrorCodes.ImageInvalid, 'not a qcow2 image: bad magic');
  }
  if (first.length < 24) {
    throw new CdiError(
      ErrorCodes.ImageInvalid,
      `image too short for a qcow2 header: ${first.length} bytes`,
    );
  }
  const bits = Math.min(MAX_CLUSTER_BITS, Math.max(MIN_CLUSTER_BITS, first.readUInt32BE(20)));
  return Math.min(size, 2 ** bits + HEADER_SLACK);
}

/** Reads and validates the header through `reader`. */
export async function openMap(
  binding: Binding,
  reader: RangeReader,
  signal?: AbortSignal,
): Promise<{ map: Qcow2Map; raw: RawQcow2Info; bytesRead: number }> {
  const first = await reader.read(0, Math.min(reader.size, 512), signal);
  const need = headerBytesNeeded(first, reader.size);
  const head = need <= first.length ? first : await reader.read(0, need, signal);
  const map = new binding.Qcow2Map(head, reader.size);
  return { map, raw: map.info(), bytesRead: first.length + (head === first ? 0 : head.length) };
}

/** Mutable counters of one conversion. */
export class StatsCounter {
  bytesRead = 0;
  dataBytesWritten = 0;
  zeroBytes = 0;
  spilledBytes = 0;
  done = 0;

  /** Frozen snapshot. */
  result(): ConvertStats {
    return {
      bytesRead: this.bytesRead,
      dataBytesWritten: this.dataBytesWritten,
      zeroBytes: this.zeroBytes,
      spilledBytes: this.spilledBytes,
    };
  }
}

/** What runs a chunk: a {@link Qcow2Map} or an `ImageMap`. */
export interface ChunkRunner {
  processChunk(chunk: RawChunk): Promise<RawChunkStats>;
}

/** Writes work items into the target: chunks through the native workers, zero runs as needed. */
export class ItemWriter {
  readonly #binding: Binding;
  readonly #map: ChunkRunner;
  readonly #options: Pick<ConvertOptions, 'target' | 'onProgress'>;
  readonly #stats: StatsCounter;
  readonly #total: number;
  readonly sparse: boolean;

  constructor(init: {
    binding: Binding;
    map: ChunkRunner;
    options: Pick<ConvertOptions, 'target' | 'onProgress'>;
    stats: StatsCounter;
    total: number;
  }) {
    this.#binding = init.binding;
    this.#map = init.map;
    this.#options = init.options;
    this.#stats = init.stats;
    this.#total = init.total;
    const t = init.options.target;
    this.sparse = t.kind === 'file' || t.targetIsZeroed === true;
  }

  /** Makes a zero run read as zeros (block targets only) and counts it. */
  async zero(offset: number, length: number): Promise<void> {
    if (!this.sparse) await this.#binding.zeroRange(this.#options.target.fd, offset, length);
    this.#stats.zeroBytes += length;
    this.#progress(length);
  }

  /** Runs one chunk with host bytes from `sourceFd` or from `pieces`. */
  async chunk(
    chunk: Chunk,
    source: { sourceFd: number } | { pieces: Buffer[]; pieceOffsets: number[] },
  ): Promise<void> {
    const r = await this.#map.processChunk({
      fd: this.#options.target.fd,
      sparse: this.sparse,
      guestOffset: chunk.guestOffset,
      guestLength: chunk.guestLength,
      extents: chunk.extents,
      ...source,
    });
    this.#stats.dataBytesWritten += r.dataBytesWritten;
    this.#stats.zeroBytes += r.zeroBytes;
    this.#progress(chunk.guestLength);
  }

  #progress(length: number): void {
    this.#stats.done += length;
    this.#options.onProgress?.(this.#stats.done, this.#total);
  }
}

/** Options of {@link convertRandomAccess}. */
export interface RandomAccessOptions extends ConvertOptions {
  readonly concurrency: number;
  /** Guest bytes per chunk (default {@link CHUNK_BYTES}). */
  readonly chunkBytes?: number;
}

/** Converts an image with random access to its bytes. */
export async function convertRandomAccess(
  binding: Binding,
  source: ImageSource,
  options: RandomAccessOptions,
): Promise<ConvertStats> {
  const { signal } = options;
  const stats = new StatsCounter();
  const { map, raw, bytesRead } = await openMap(binding, source, signal);
  stats.bytesRead += bytesRead;
  if (raw.refusal !== undefined) {
    throw new CdiError(raw.refusal.code as ErrorCode, raw.refusal.message);
  }
  await options.prepareTarget?.(toQcow2Info(raw));
  const writer = new ItemWriter({ binding, map, options, stats, total: raw.virtualSize });
  // An image with no L1 entries (virtual size 0) may carry any L1 offset: never read it.
  const l2Offsets =
    raw.l1Entries === 0
      ? new Float64Array(0)
      : map.parseL1(await readCounted(source, raw.l1Offset, raw.l1Entries * 8, stats, signal));
  // The stream converter meets the refcount blocks; claim them here too, for the same verdict.
  if (raw.l1Entries > 0 && raw.refcountTableBytes > 0) {
    const table = raw.refcountTableBytes;
    map.claimRefcountTable(
      await readCounted(source, raw.refcountTableOffset, table, stats, signal),
    );
  }
  const pool = new WorkPool(options.concurrency);
  const chunker = new Chunker(
    options.chunkBytes === undefined ? {} : { maxChunk: options.chunkBytes },
  );
  const coverage = raw.l2Entries * raw.clusterSize;
  const dispatch = async (items: WorkItem[]): Promise<void> => {
    for (const item of items) {
      throwIfAborted(signal);
      await pool.run(() => runItem(item, source, writer, stats, signal));
    }
  };
  try {
    for (let i = 0; i < raw.l1Entries; i++) {
      throwIfAborted(signal);
      const l2Offset = l2Offsets[i]!;
      if (l2Offset === 0) {
        const start = i * coverage;
        const length = Math.min(coverage, raw.virtualSize - start);
        await dispatch(chunker.push(Float64Array.of(start, length, ExtentKind.Zero, 0, 0)));
      } else {
        const l2 = await readCounted(source, l2Offset, raw.clusterSize, stats, signal);
        await dispatch(chunker.push(map.mapL2(i, l2)));
      }
    }
    await dispatch(chunker.flush());
  } finally {
    // Never leave workers writing into the target after we return or throw.
    await pool.drain().catch(() => undefined);
  }
  await pool.drain();
  return stats.result();
}

async function readCounted(
  source: RangeReader,
  offset: number,
  length: number,
  stats: StatsCounter,
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  const buf = await source.read(offset, length, signal);
  stats.bytesRead += length;
  return buf;
}

/** Runs one work item, reading host bytes natively (`fd`) or through the reader. */
export async function runItem(
  item: WorkItem,
  source: ImageSource,
  writer: ItemWriter,
  stats: StatsCounter,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (item.type === 'zero') {
    await writer.zero(item.offset, item.length);
    return;
  }
  if (source.fd !== undefined) {
    await writer.chunk(item, { sourceFd: source.fd });
    for (const r of hostRanges(item.extents, source.size, 0)) stats.bytesRead += r.length;
    return;
  }
  const ranges = hostRanges(item.extents, source.size);
  const pieces = await Promise.all(ranges.map((r) => source.read(r.offset, r.length, signal)));
  for (const r of ranges) stats.bytesRead += r.length;
  await writer.chunk(item, { pieces, pieceOffsets: ranges.map((r) => r.offset) });
}
