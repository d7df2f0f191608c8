// SPDX-License-Identifier: Apache-2.0
/**
 * The random-access conversion engine, one for every format: a format's opener (qcow2-map.ts,
 * block-map.ts) reads and validates the header and hands over a walk over the image's extents in
 * guest order, reading its tables as it goes; this engine cuts the extents into chunks
 * (chunker.ts) and runs them on the libuv pool through the map's `processChunk`, a few at a time,
 * so reads, decompression and writes overlap and both cores decompress. Local files are read by
 * the native workers with pread; other readers are fetched here (coalesced ranges, in parallel)
 * and handed over as buffers. Only metadata and allocated blocks are read.
 */
import type { Binding, RawChunk, RawChunkStats } from './binding.js';
import { Chunker, hostRanges, type Chunk, type WorkItem } from './chunker.js';
import { throwIfAborted, throwIfRefused, type Refusal } from './errors.js';
import type { ConvertOptions, ConvertStats, RangeReader } from './types.js';
import { WorkPool } from './work-pool.js';

/** A reader plus, for local files, the descriptor the native workers pread from. */
export interface ImageSource extends RangeReader {
  readonly fd?: number;
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

/** Reads `length` bytes at `offset` and counts them. */
export async function readCounted(
  source: RangeReader,
  range: { readonly offset: number; readonly length: number },
  stats: StatsCounter,
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  const buf = await source.read(range.offset, range.length, signal);
  stats.bytesRead += range.length;
  return buf;
}

/** What runs a chunk: a `Qcow2Map` or an `ImageMap`. */
export interface ChunkRunner {
  processChunk(chunk: RawChunk): Promise<RawChunkStats>;
}

/** Host bytes of a chunk: read natively from a descriptor, or already fetched. */
export type ChunkSource = { sourceFd: number } | { pieces: Buffer[]; pieceOffsets: number[] };

/** A chunk's host bytes and, for lent pieces, what to call once the chunk is written. */
export type LentChunkSource = ChunkSource & { release?: () => void };

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
  async chunk(chunk: Chunk, source: ChunkSource): Promise<void> {
    const host =
      'sourceFd' in source
        ? { sourceFd: source.sourceFd }
        : { pieces: source.pieces, pieceOffsets: source.pieceOffsets };
    const { directFd } = this.#options.target;
    const r = await this.#map.processChunk({
      fd: this.#options.target.fd,
      ...(directFd === undefined ? {} : { directFd }),
      sparse: this.sparse,
      guestOffset: chunk.guestOffset,
      guestLength: chunk.guestLength,
      extents: chunk.extents,
      ...host,
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

/** What every format's public info has. */
export interface InfoBase {
  readonly virtualSize: number;
  readonly refusal?: Refusal;
}

/** An image whose header (and, for block maps, tables) has been read and validated. */
export interface OpenedImage<I extends InfoBase> {
  /** The public info (`qemu-img info`), refusal included. */
  readonly info: I;
  readonly runner: ChunkRunner;
  /** The image's extents in guest order, batch by batch, reading tables as it goes. */
  extents(signal: AbortSignal | undefined): AsyncIterable<Float64Array> | Iterable<Float64Array>;
}

/** A format's opener for random access (one per row of the format table). */
export type ImageOpener<I extends InfoBase> = (
  binding: Binding,
  source: RangeReader,
  stats: StatsCounter,
  signal: AbortSignal | undefined,
) => Promise<OpenedImage<I>>;

/** Options of {@link convertRandomAccess}. */
export interface RandomAccessOptions<I> extends ConvertOptions<I> {
  readonly concurrency: number;
  /**
   * Directory for the metadata a conversion that reads in order spills (streamOptimized VMDK;
   * a few KiB per GiB of disk); default the OS temporary directory.
   */
  readonly spillDir?: string;
}

/** Converts an image with random access to its bytes, through its format's `open`. */
export async function convertRandomAccess<I extends InfoBase>(
  binding: Binding,
  open: ImageOpener<I>,
  source: ImageSource,
  options: RandomAccessOptions<I>,
): Promise<ConvertStats> {
  const { signal } = options;
  const stats = new StatsCounter();
  const opened = await open(binding, source, stats, signal);
  throwIfRefused(opened.info);
  await options.prepareTarget?.(opened.info);
  const writer = new ItemWriter({
    binding,
    map: opened.runner,
    options,
    stats,
    total: opened.info.virtualSize,
  });
  const pool = new WorkPool(options.concurrency);
  const chunker = new Chunker();
  const dispatch = async (items: WorkItem[]): Promise<void> => {
    for (const item of items) {
      throwIfAborted(signal);
      await pool.run(() => runItem(item, { source, writer, stats, signal }));
    }
  };
  try {
    for await (const extents of opened.extents(signal)) {
      throwIfAborted(signal);
      await dispatch(chunker.push(extents));
    }
    await dispatch(chunker.flush());
  } finally {
    // Never leave workers writing into the target after we return or throw.
    await pool.drain().catch(() => undefined);
  }
  await pool.drain();
  return stats.result();
}

/** Runs one work item, reading host bytes natively (`fd`) or through the reader. */
async function runItem(
  item: WorkItem,
  ctx: {
    readonly source: ImageSource;
    readonly writer: ItemWriter;
    readonly stats: StatsCounter;
    readonly signal: AbortSignal | undefined;
  },
): Promise<void> {
  const { source, writer, stats, signal } = ctx;
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
