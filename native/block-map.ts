// SPDX-License-Identifier: Apache-2.0
/**
 * The block-map formats (VDI, VHD, VHDX, VMDK) for random access: the header and tail are parsed
 * by the plain C++ cores (`src/image_format.cc`), the tables they ask for are read, and the block
 * map is walked in batches for the random-access engine (random-access.ts).
 */
import type { Binding, ImageMap, RawImageInfo } from './binding.js';
import { at } from './extents.js';
import { throwIfAborted, throwIfRefused } from './errors.js';
import { StatsCounter, type ImageOpener } from './random-access.js';
import type { BlockMapFormat, DiskImageInfo, RangeReader } from './types.js';

/** What the parser of a block-map format needs; set by the format's row in formats.ts. */
export interface BlockMapSpec {
  readonly format: BlockMapFormat;
  /**
   * Bytes of the image start handed to the parser: the header, VHD dynamic header or VMDK
   * descriptor (VHDX: the file identifier, both headers and both region tables).
   */
  readonly headBytes: number;
  /**
   * Table rounds to feed before the info is complete: a VHDX keeps its size in its metadata
   * region (the first round); the other formats know it from the header.
   */
  readonly infoRounds: number;
}

/** Bytes of the image end handed to the parser (VHD footer, VMDK footer and markers). */
export const TAIL_BYTES = 1536;
/** Blocks mapped per call (bounds the extent arrays). */
export const MAP_BATCH = 4096;

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

/** Reads and validates the header (and the footer at the end) through `reader`. */
export async function openImageHeader(
  binding: Binding,
  spec: BlockMapSpec,
  reader: RangeReader,
  opts: { readonly stats: StatsCounter; readonly signal?: AbortSignal | undefined },
): Promise<{ map: ImageMap; raw: RawImageInfo }> {
  const { stats, signal } = opts;
  const headLength = Math.min(reader.size, spec.headBytes);
  const tailLength = Math.min(reader.size, TAIL_BYTES);
  const head = headLength > 0 ? await reader.read(0, headLength, signal) : Buffer.alloc(0);
  const tail =
    tailLength === 0
      ? Buffer.alloc(0)
      : tailLength <= headLength && reader.size === headLength
        ? head.subarray(headLength - tailLength)
        : await reader.read(reader.size - tailLength, tailLength, signal);
  stats.bytesRead += head.length + (tail.buffer === head.buffer ? 0 : tail.length);
  const map = new binding.ImageMap(spec.format, head, tail, reader.size);
  return { map, raw: map.info() };
}

/** Table ranges the map still needs, as (offset, length) pairs. */
export function neededRanges(map: ImageMap): [offset: number, length: number][] {
  const needs = map.needs();
  const ranges: [number, number][] = [];
  for (let i = 0; i + 1 < needs.length; i += 2) ranges.push([at(needs, i), at(needs, i + 1)]);
  return ranges;
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
  for (
    let ranges = neededRanges(map);
    ranges.length > 0 && rounds-- > 0;
    ranges = neededRanges(map)
  ) {
    throwIfAborted(signal);
    // A few at a time: a VMDK has one grain table per 32 MiB of guest space.
    for (let i = 0; i < ranges.length; i += 16) {
      const batch = ranges.slice(i, i + 16);
      const tables = await Promise.all(
        batch.map(async ([offset, length]) => ({
          offset,
          table: await reader.read(offset, length, signal),
        })),
      );
      for (const { offset, table } of tables) {
        stats.bytesRead += table.length;
        map.feed(offset, table);
      }
    }
  }
}

/** What `qemu-img info` would report (header only; a VHDX also reads its metadata region). */
export async function readBlockMapInfo(
  binding: Binding,
  spec: BlockMapSpec,
  reader: RangeReader,
  signal: AbortSignal | undefined,
): Promise<DiskImageInfo> {
  const stats = new StatsCounter();
  const { map } = await openImageHeader(binding, spec, reader, { stats, signal });
  // Only the rounds that complete the info; the rest of the tables only locate blocks.
  if (spec.infoRounds > 0)
    await loadTables(map, reader, stats, { signal, rounds: spec.infoRounds });
  return toDiskImageInfo(map.info());
}

/**
 * What the first bytes of a VDI, VHD or VMDK image say, for sequential input whose end (VHD and
 * VMDK footers, table bounds) is not at hand.
 */
export function readBlockMapInfoFromHead(
  binding: Binding,
  format: BlockMapFormat,
  head: Buffer,
): DiskImageInfo {
  return toDiskImageInfo(new binding.ImageMap(format, head, Buffer.alloc(0), -1).info());
}

/** The opener of a block-map format for the random-access engine: reads every table first. */
export function blockMapOpener(spec: BlockMapSpec): ImageOpener<DiskImageInfo> {
  return async (binding, source, stats, signal) => {
    const { map, raw } = await openImageHeader(binding, spec, source, { stats, signal });
    throwIfRefused(raw);
    await loadTables(map, source, stats, { signal });
    // A VHDX learns its size and refusals from its metadata region.
    const complete = map.info();
    return {
      info: toDiskImageInfo(complete),
      runner: map,
      extents: () => blockExtents(map, complete.blockCount),
    };
  };
}

/** The block map's extents, {@link MAP_BATCH} blocks at a time. */
function* blockExtents(map: ImageMap, blockCount: number): Generator<Float64Array> {
  for (let first = 0; first < blockCount; first += MAP_BATCH) yield map.mapBlocks(first, MAP_BATCH);
}
