// SPDX-License-Identifier: Apache-2.0
/**
 * Random-access conversion of VDI, VHD and VMDK images: the header and tail are parsed by the
 * plain C++ cores (`src/image_format.cc`), the tables they ask for are read, and the block map is
 * cut into chunks (chunker.ts) that the native workers copy, like the qcow2 engine
 * (ranged-convert.ts). Only allocated blocks are read.
 */
import { CdiError, type ErrorCode } from '../common/errors.js';
import type { Binding, ImageMap, RawImageInfo } from './binding.js';
import { Chunker, type WorkItem } from './chunker.js';
import { throwIfAborted } from './errors.js';
import { runItem, StatsCounter, type ImageSource, ItemWriter } from './ranged-convert.js';
import type {
  BlockMapFormat,
  ConvertOptions,
  ConvertStats,
  DiskImageInfo,
  RangeReader,
} from './types.js';
import { WorkPool } from './work-pool.js';

/** Bytes of the image start handed to the parser (header, VHD dynamic header, VMDK descriptor). */
export const HEAD_BYTES = 64 * 1024;
/** VHDX: the file identifier, both headers and both region tables. */
const VHDX_HEAD_BYTES = 320 * 1024;

/** Bytes of the image start the parser needs for `format`. */
export function headBytes(format: BlockMapFormat): number {
  return format === 'vhdx' ? VHDX_HEAD_BYTES : HEAD_BYTES;
}
/** Bytes of the image end handed to the parser (VHD footer, VMDK footer and markers). */
export const TAIL_BYTES = 1536;
/** Blocks mapped per call (bounds the extent arrays). */
const MAP_BATCH = 4096;

/** Converts the binding's header facts to the public {@link DiskImageInfo}. */
export function toDiskImageInfo(raw: RawImageInfo): DiskImageInfo {
  return {
    format: raw.format,
    subformat: raw.subformat,
    virtualSize: raw.virtualSize,
    blockSize: raw.blockSize,
    compressed: raw.compressed,
    ...(raw.creator === undefined ? {} : { creator: raw.creator }),
    ...(raw.refusal === undefined ? {} : { refusal: { ...raw.refusal } }),
  };
}

/** Throws the refusal of an image (differencing disk, parent) as its CdiError. */
export function throwIfRefused(raw: RawImageInfo): void {
  if (raw.refusal !== undefined) {
    throw new CdiError(raw.refusal.code as ErrorCode, raw.refusal.message);
  }
}

/** Reads and validates the header (and the footer at the end) through `reader`. */
export async function openImageHeader(
  binding: Binding,
  format: BlockMapFormat,
  reader: RangeReader,
  opts: { readonly stats: StatsCounter; readonly signal?: AbortSignal | undefined },
): Promise<{ map: ImageMap; raw: RawImageInfo }> {
  const { stats, signal } = opts;
  const headLength = Math.min(reader.size, headBytes(format));
  const tailLength = Math.min(reader.size, TAIL_BYTES);
  const head = headLength > 0 ? await reader.read(0, headLength, signal) : Buffer.alloc(0);
  const tail =
    tailLength === 0
      ? Buffer.alloc(0)
      : tailLength <= headLength && reader.size === headLength
        ? head.subarray(headLength - tailLength)
        : await reader.read(reader.size - tailLength, tailLength, signal);
  stats.bytesRead += head.length + (tail.buffer === head.buffer ? 0 : tail.length);
  const map = new binding.ImageMap(format, head, tail, reader.size);
  return { map, raw: map.info() };
}

/** Reads every table the map asks for (VMDK: the grain directory, then its grain tables). */
export async function loadTables(
  map: ImageMap,
  reader: RangeReader,
  stats: StatsCounter,
  opts: { readonly signal?: AbortSignal | undefined; readonly rounds?: number } = {},
): Promise<void> {
  const { signal } = opts;
  let rounds = opts.rounds ?? Number.POSITIVE_INFINITY;
  for (let needs = map.needs(); needs.length > 0 && rounds-- > 0; needs = map.needs()) {
    throwIfAborted(signal);
    const ranges: [number, number][] = [];
    for (let i = 0; i + 1 < needs.length; i += 2) ranges.push([needs[i]!, needs[i + 1]!]);
    // A few at a time: a VMDK has one grain table per 32 MiB of guest space.
    for (let i = 0; i < ranges.length; i += 16) {
      const batch = ranges.slice(i, i + 16);
      const tables = await Promise.all(batch.map(([o, l]) => reader.read(o, l, signal)));
      batch.forEach(([offset, length], k) => {
        stats.bytesRead += length;
        map.feed(offset, tables[k]!);
      });
    }
  }
}

/** Options of {@link convertImageRandomAccess}. */
export interface ImageRandomAccessOptions extends ConvertOptions<DiskImageInfo> {
  readonly concurrency: number;
}

/** Converts a VDI, VHD or VMDK image with random access to its bytes. */
export async function convertImageRandomAccess(
  binding: Binding,
  format: BlockMapFormat,
  source: ImageSource,
  options: ImageRandomAccessOptions,
): Promise<ConvertStats> {
  const { signal } = options;
  const stats = new StatsCounter();
  const opened = await openImageHeader(binding, format, source, { stats, signal });
  const { map } = opened;
  throwIfRefused(opened.raw);
  await loadTables(map, source, stats, { signal });
  // A VHDX learns its size and refusals from its metadata region.
  const raw = map.info();
  throwIfRefused(raw);
  await options.prepareTarget?.(toDiskImageInfo(raw));
  const writer = new ItemWriter({ binding, map, options, stats, total: raw.virtualSize });
  const pool = new WorkPool(options.concurrency);
  const chunker = new Chunker();
  const dispatch = async (items: WorkItem[]): Promise<void> => {
    for (const item of items) {
      throwIfAborted(signal);
      await pool.run(() => runItem(item, source, writer, stats, signal));
    }
  };
  try {
    for (let first = 0; first < raw.blockCount; first += MAP_BATCH) {
      throwIfAborted(signal);
      await dispatch(chunker.push(map.mapBlocks(first, MAP_BATCH)));
    }
    await dispatch(chunker.flush());
  } finally {
    await pool.drain().catch(() => undefined);
  }
  await pool.drain();
  return stats.result();
}
