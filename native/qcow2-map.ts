// SPDX-License-Identifier: Apache-2.0
/**
 * qcow2 for random access: the header (parsed and validated by `Qcow2Map`, src/qcow2_map.cc),
 * its public info, and the walk over the L1 table and each L2 table in order that feeds the
 * random-access engine (random-access.ts).
 */
import { CdiError, ErrorCodes } from '../common/errors.js';
import type { Binding, Qcow2Map, RawQcow2Info } from './binding.js';
import { at, ExtentKind } from './extents.js';
import { throwIfAborted } from './errors.js';
import { readCounted, type ImageOpener, type StatsCounter } from './random-access.js';
import type { Qcow2Info, RangeReader } from './types.js';

/** qcow2 magic "QFI\xfb". */
export const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);
/** Room after the first cluster for a backing file name (qemu allows 1023 bytes). */
const HEADER_SLACK = 1024;
const MIN_CLUSTER_BITS = 9;
const MAX_CLUSTER_BITS = 21;

/** True when `head` starts with the qcow2 magic. */
export function isQcow2Header(head: Buffer): boolean {
  return (
    head.length >= QCOW2_MAGIC.length && head.subarray(0, QCOW2_MAGIC.length).equals(QCOW2_MAGIC)
  );
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
export async function openQcow2Header(
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

/** What `qemu-img info` would report (header only). */
export async function readQcow2Info(
  binding: Binding,
  reader: RangeReader,
  signal: AbortSignal | undefined,
): Promise<Qcow2Info> {
  const { raw } = await openQcow2Header(binding, reader, signal);
  return toQcow2Info(raw);
}

/** Opens a qcow2 image for the random-access engine. */
export const openQcow2: ImageOpener<Qcow2Info> = async (binding, source, stats, signal) => {
  const { map, raw, bytesRead } = await openQcow2Header(binding, source, signal);
  stats.bytesRead += bytesRead;
  return {
    info: toQcow2Info(raw),
    runner: map,
    extents: (s) => l2Extents({ map, raw }, source, stats, s),
  };
};

/** The extents of every L1 entry in turn: an unallocated entry is one zero run. */
async function* l2Extents(
  { map, raw }: { readonly map: Qcow2Map; readonly raw: RawQcow2Info },
  source: RangeReader,
  stats: StatsCounter,
  signal: AbortSignal | undefined,
): AsyncGenerator<Float64Array> {
  // An image with no L1 entries (virtual size 0) may carry any L1 offset: never read it.
  if (raw.l1Entries === 0) return;
  const l1 = await readCounted(
    source,
    { offset: raw.l1Offset, length: raw.l1Entries * 8 },
    stats,
    signal,
  );
  const l2Offsets = map.parseL1(l1);
  const coverage = raw.l2Entries * raw.clusterSize;
  for (let i = 0; i < raw.l1Entries; i++) {
    throwIfAborted(signal);
    const l2Offset = at(l2Offsets, i);
    if (l2Offset === 0) {
      const start = i * coverage;
      const length = Math.min(coverage, raw.virtualSize - start);
      yield Float64Array.of(start, length, ExtentKind.Zero, 0, 0);
    } else {
      const l2 = await readCounted(
        source,
        { offset: l2Offset, length: raw.clusterSize },
        stats,
        signal,
      );
      yield map.mapL2(i, l2);
    }
  }
}
