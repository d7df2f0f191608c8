// SPDX-License-Identifier: Apache-2.0
/**
 * One verdict for streamOptimized VMDK. The stream converter places each grain by its marker
 * (which carries the grain's sector), while qemu-img follows the grain directory and grain
 * tables in the footer. On a damaged image the two disagree (a table entry naming another
 * offset, a grain no table names, a table on grain bytes), so at the end of the stream the
 * directory and tables are read back from the metadata the stream kept (the header area, every
 * metadata marker with its payload, everything after the end-of-stream marker) and must place
 * exactly the grains the markers placed, no more and no fewer. An image that passes converts to
 * qemu-img's disk; any other is refused with `CDI_IMAGE_INVALID` naming the first disagreement.
 * The random-access converter converts streamOptimized images through this same path, so
 * every converter gives the same verdict.
 */
import { CdiError, ErrorCodes } from '../common/errors.js';
import type { Binding } from './binding.js';
import { loadTables, MAP_BATCH, TAIL_BYTES, type BlockMapSpec } from './block-map.js';
import { ExtentKind, extentsOf } from './extents.js';
import type { StatsCounter } from './random-access.js';
import type { SpillFile } from './spill-file.js';
import type { RangeReader } from './types.js';

/** The grains the markers placed, in stream order (so by increasing host offset). */
export class GrainLog {
  #hosts = new Float64Array(1024);
  #indexes = new Uint32Array(1024);
  #count = 0;

  get count(): number {
    return this.#count;
  }

  /** Records the grain of block `index` whose marker is at `host` (hosts only grow). */
  add(index: number, host: number): void {
    if (this.#count === this.#hosts.length) {
      const hosts = new Float64Array(this.#count * 2);
      hosts.set(this.#hosts);
      this.#hosts = hosts;
      const indexes = new Uint32Array(this.#count * 2);
      indexes.set(this.#indexes);
      this.#indexes = indexes;
    }
    this.#hosts[this.#count] = host;
    this.#indexes[this.#count] = index;
    this.#count += 1;
  }

  /** Position of the grain whose marker is at `host`, or -1. */
  find(host: number): number {
    let lo = 0;
    let hi = this.#count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const h = this.#hosts[mid] ?? 0;
      if (h === host) return mid;
      if (h < host) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  host(position: number): number {
    return this.#hosts[position] ?? 0;
  }

  index(position: number): number {
    return this.#indexes[position] ?? 0;
  }
}

/** What the check needs from the stream converter. */
export interface GrainCheckInput {
  readonly binding: Binding;
  readonly spec: BlockMapSpec;
  /** The first `spec.headBytes` bytes of the stream (or all of a shorter one). */
  readonly head: Buffer;
  /** The metadata the stream kept, readable by host offset. */
  readonly spill: SpillFile;
  /** Length of the stream. */
  readonly end: number;
  readonly grains: GrainLog;
  /** The geometry the stream converted with (from the header at the start). */
  readonly geometry: {
    readonly virtualSize: number;
    readonly blockSize: number;
    readonly blockCount: number;
  };
  readonly stats: StatsCounter;
}

const invalid = (message: string): CdiError => new CdiError(ErrorCodes.ImageInvalid, message);

/** A reader over the kept metadata: bytes the stream passed on as grain data are refused. */
function metadataReader(spill: SpillFile, end: number): RangeReader {
  return {
    size: end,
    read: async (offset, length) => {
      try {
        return await spill.read(offset, length, end);
      } catch (err) {
        if (err instanceof CdiError && err.code === ErrorCodes.ImageInvalid) {
          throw invalid(
            `vmdk metadata at offset ${offset} (${length} bytes) is not a metadata block of the ` +
              'stream (it overlaps a grain or its marker)',
          );
        }
        throw err;
      }
    },
  };
}

/** See the module comment; throws the refusal. */
export async function checkGrainsAgainstTables(input: GrainCheckInput): Promise<void> {
  const { binding, spec, head, spill, end, grains, geometry, stats } = input;
  const reader = metadataReader(spill, end);
  const tailLength = Math.min(end, TAIL_BYTES);
  const tail = await reader.read(end - tailLength, tailLength);
  const map = new binding.ImageMap(spec.format, head, tail, end);
  const raw = map.info();
  if (!raw.compressed) throw invalid('vmdk footer does not describe a streamOptimized image');
  if (
    raw.blockSize !== geometry.blockSize ||
    raw.blockCount !== geometry.blockCount ||
    raw.virtualSize !== geometry.virtualSize
  ) {
    throw invalid(
      `vmdk footer describes a ${raw.virtualSize}-byte disk of ${raw.blockSize}-byte grains, the ` +
        `header a ${geometry.virtualSize}-byte disk of ${geometry.blockSize}-byte grains`,
    );
  }
  await loadTables(map, reader, stats);
  const matched = new Uint8Array(grains.count);
  for (let first = 0; first < raw.blockCount; first += MAP_BATCH) {
    for (const e of extentsOf(map.mapBlocks(first, MAP_BATCH))) {
      if (e.kind !== ExtentKind.MarkerGrain) continue;
      const index = e.guest / raw.blockSize;
      const at = grains.find(e.host);
      if (at < 0 || grains.index(at) !== index) {
        throw invalid(
          `vmdk grain table places the grain of sector ${index * (raw.blockSize / 512)} at ` +
            `offset ${e.host}, where the stream has ${at < 0 ? 'no grain marker' : `the grain of sector ${grains.index(at) * (raw.blockSize / 512)}`}`,
        );
      }
      matched[at] = 1;
    }
  }
  const stray = matched.indexOf(0);
  if (stray >= 0) {
    throw invalid(
      `vmdk grain marker at offset ${grains.host(stray)} (sector ` +
        `${grains.index(stray) * (raw.blockSize / 512)}) is named by no grain table`,
    );
  }
}
