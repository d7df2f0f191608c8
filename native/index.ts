// SPDX-License-Identifier: Apache-2.0
/**
 * The typed wrapper of the native qcow2 converter, and the only module that loads the addon
 * (`native/build/Release/cdi_native.node`, built by `npm run build:native`). Everything outside
 * `native/` calls these functions; every failure is a {@link CdiError}.
 */
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Binding } from './binding.js';
import { throwIfAborted, toConvertError } from './errors.js';
import { convertRandomAccess, isQcow2Header, openMap, toQcow2Info } from './ranged-convert.js';
import { Qcow2StreamConverter } from './stream-convert.js';
import {
  convertImageRandomAccess,
  loadTables,
  openImageHeader,
  toDiskImageInfo,
} from './image-convert.js';
import { ImageStreamConverter } from './image-stream.js';
import { StatsCounter } from './ranged-convert.js';
import type {
  BlockMapFormat,
  ConvertibleFormat,
  ConvertOptions,
  ConvertStats,
  DiskImageInfo,
  ImageInfo,
  Qcow2Info,
  RangeReader,
} from './types.js';

export type {
  BlockMapFormat,
  ConvertibleFormat,
  DiskImageInfo,
  ImageInfo,
  ConvertOptions,
  ConvertStats,
  ConvertTarget,
  Qcow2Info,
  RangeReader,
  TargetKind,
} from './types.js';
export { isQcow2Header };

/** Chunks in flight for local files: both cores decompress while reads and writes overlap. */
const FILE_CONCURRENCY = 4;
/** Chunks in flight for remote readers (each fetches its ranges in parallel). */
const RANGED_CONCURRENCY = 4;

/** Walks up from this module to the directory holding package.json (works from dist/ too). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above the native wrapper');
    dir = parent;
  }
}

function loadBinding(): Binding {
  const require = createRequire(import.meta.url);
  return require(join(packageRoot(), 'native', 'build', 'Release', 'cdi_native.node')) as Binding;
}

const binding: Binding = loadBinding();

/**
 * Validates the header and tables' placement and reports what `qemu-img info` would. Never
 * refuses for a backing file, external data file or encryption (see `refusal`); throws a
 * CdiError on structurally invalid images.
 */
export async function readQcow2Info(reader: RangeReader, signal?: AbortSignal): Promise<Qcow2Info> {
  try {
    const { raw } = await openMap(binding, reader, signal);
    return toQcow2Info(raw);
  } catch (err) {
    throw toConvertError(err, signal);
  }
}

/** A {@link RangeReader} over a local file; `close` when done. */
export interface FileRangeReader extends RangeReader {
  /** The OS file descriptor (native workers pread from it). */
  readonly fd: number;
  close(): Promise<void>;
}

/** Opens a local file for random access. */
export async function openFileRangeReader(path: string): Promise<FileRangeReader> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    return {
      size,
      fd: handle.fd,
      async read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
        throwIfAborted(signal);
        const buf = Buffer.alloc(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
          if (bytesRead === 0) {
            throw new RangeError(`short read at offset ${offset + done} of ${path}`);
          }
          done += bytesRead;
        }
        return buf;
      },
      close: () => handle.close(),
    };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Converts a local qcow2 file to raw (the fastest path: native pread, no copies through JS). */
export async function convertQcow2File(
  path: string,
  options: ConvertOptions & { readonly concurrency?: number },
): Promise<ConvertStats> {
  let reader: FileRangeReader | undefined;
  try {
    reader = await openFileRangeReader(path);
    return await convertRandomAccess(binding, reader, {
      ...options,
      concurrency: options.concurrency ?? FILE_CONCURRENCY,
    });
  } catch (err) {
    throw toConvertError(err, options.signal);
  } finally {
    await reader?.close();
  }
}

/**
 * Converts through a random-access reader (HTTP ranges, S3 ranged GETs): reads the metadata,
 * then only the allocated clusters, coalesced and `concurrency` chunks at a time.
 */
export async function convertQcow2Ranged(
  reader: RangeReader,
  options: ConvertOptions & { readonly concurrency?: number },
): Promise<ConvertStats> {
  // A reader with an `fd` field would be read natively; hide it so only `read` is used.
  const source: RangeReader = {
    size: reader.size,
    read: (offset, length, signal) => reader.read(offset, length, signal),
  };
  try {
    return await convertRandomAccess(binding, source, {
      ...options,
      concurrency: options.concurrency ?? RANGED_CONCURRENCY,
    });
  } catch (err) {
    throw toConvertError(err, options.signal);
  }
}

/**
 * A Writable for sequential input (decompressed stream, upload, registry layer): converts
 * while the bytes stream, spilling to a temporary file under `spillDir` only the clusters whose
 * L2 entry has not been seen yet; the spill file is deleted at the end. Await `result`.
 */
export function createQcow2StreamConverter(
  options: ConvertOptions & { readonly spillDir: string; readonly size?: number },
): import('node:stream').Writable & { readonly result: Promise<ConvertStats> } {
  return new Qcow2StreamConverter(binding, options);
}

/** Makes [offset, offset+length) of `fd` read as zeros, efficiently (BLKZEROOUT, fallocate). */
export async function zeroRange(fd: number, offset: number, length: number): Promise<void> {
  try {
    await binding.zeroRange(fd, offset, length);
  } catch (err) {
    throw toConvertError(err);
  }
}

/** A run of data in a file: [offset, offset+length). */
export interface DataExtent {
  readonly offset: number;
  readonly length: number;
}

/**
 * Up to `maxExtents` data ranges of `fd` within [start, end) (SEEK_DATA/SEEK_HOLE); a file or
 * device that cannot report holes is one range. Call again from the last end for more.
 */
export async function dataExtents(
  fd: number,
  start: number,
  end: number,
  maxExtents: number,
): Promise<DataExtent[]> {
  let pairs: Float64Array;
  try {
    pairs = await binding.dataExtents(fd, start, end, maxExtents);
  } catch (err) {
    throw toConvertError(err);
  }
  const out: DataExtent[] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2)
    out.push({ offset: pairs[i] ?? 0, length: pairs[i + 1] ?? 0 });
  return out;
}

/** True for the formats {@link convertImageFile} and friends accept. */
export function isConvertibleFormat(format: string): format is ConvertibleFormat {
  return (
    format === 'qcow2' ||
    format === 'vdi' ||
    format === 'vhd' ||
    format === 'vmdk' ||
    format === 'vhdx'
  );
}

/**
 * What `qemu-img info` would report about an image of `format` (header only; the block tables
 * are validated when converting). Throws a CdiError on structurally invalid images.
 */
export async function readImageInfo(
  format: ConvertibleFormat,
  reader: RangeReader,
  signal?: AbortSignal,
): Promise<ImageInfo> {
  if (format === 'qcow2') return readQcow2Info(reader, signal);
  try {
    const stats = new StatsCounter();
    const { map } = await openImageHeader(binding, format, reader, { stats, signal });
    // A VHDX keeps its size in the metadata region (the first table round); the rest only
    // locate blocks.
    if (format === 'vhdx') await loadTables(map, reader, stats, { signal, rounds: 1 });
    return toDiskImageInfo(map.info());
  } catch (err) {
    throw toConvertError(err, signal);
  }
}

/**
 * What the first bytes of a VDI, VHD or VMDK image say, for sequential input whose end (VHD and
 * VMDK footers, table bounds) is not at hand. Throws a CdiError on invalid headers. (A VHDX keeps
 * its size in its metadata region: use {@link readImageInfo} over the first megabytes.)
 */
export function readImageInfoFromHead(format: BlockMapFormat, head: Buffer): DiskImageInfo {
  try {
    return toDiskImageInfo(new binding.ImageMap(format, head, Buffer.alloc(0), -1).info());
  } catch (err) {
    throw toConvertError(err);
  }
}

/** Options of the format-generic conversions: `prepareTarget` sees either kind of info. */
export type ImageConvertOptions = ConvertOptions<ImageInfo> & { readonly concurrency?: number };

/** Converts a local image file of `format` to raw with random access (native pread). */
export async function convertImageFile(
  format: ConvertibleFormat,
  path: string,
  options: ImageConvertOptions,
): Promise<ConvertStats> {
  if (format === 'qcow2') return convertQcow2File(path, options);
  let reader: FileRangeReader | undefined;
  try {
    reader = await openFileRangeReader(path);
    return await convertImageRandomAccess(binding, format, reader, {
      ...options,
      concurrency: options.concurrency ?? FILE_CONCURRENCY,
    });
  } catch (err) {
    throw toConvertError(err, options.signal);
  } finally {
    await reader?.close();
  }
}

/** Converts an image of `format` through a random-access reader (HTTP or S3 ranges). */
export async function convertImageRanged(
  format: ConvertibleFormat,
  reader: RangeReader,
  options: ImageConvertOptions,
): Promise<ConvertStats> {
  if (format === 'qcow2') return convertQcow2Ranged(reader, options);
  const source: RangeReader = {
    size: reader.size,
    read: (offset, length, signal) => reader.read(offset, length, signal),
  };
  try {
    return await convertImageRandomAccess(binding, format, source, {
      ...options,
      concurrency: options.concurrency ?? RANGED_CONCURRENCY,
    });
  } catch (err) {
    throw toConvertError(err, options.signal);
  }
}

/**
 * A Writable converting sequential input of `format` (see {@link createQcow2StreamConverter};
 * VDI/VHD/VMDK: stream-convert.ts's sibling image-stream.ts). A fixed VHD is refused here: it
 * streams as a raw image whose last 512 bytes are the footer. Await `result`.
 */
export function createImageStreamConverter(
  format: ConvertibleFormat,
  options: ImageConvertOptions & { readonly spillDir: string; readonly size?: number },
): import('node:stream').Writable & { readonly result: Promise<ConvertStats> } {
  if (format === 'qcow2') return new Qcow2StreamConverter(binding, options);
  return new ImageStreamConverter(binding, format satisfies BlockMapFormat, options);
}

/** The public info of a VDI/VHD/VMDK image, for callers holding a {@link DiskImageInfo}. */
export function isDiskImageInfo(info: ImageInfo): info is DiskImageInfo {
  return info.format !== 'qcow2';
}
