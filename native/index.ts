// SPDX-License-Identifier: Apache-2.0
/**
 * The public face of the native image converter (qcow2, VDI, VHD, VHDX, VMDK to raw): the format
 * table (formats.ts), conversions by format name for local files, range readers and streams, and
 * the zeroing of target ranges. Everything outside `native/` imports from here; every failure is a
 * {@link CdiError}.
 */
import { open } from 'node:fs/promises';

import { throwIfAborted, toConvertError } from './errors.js';
import { IMAGE_FORMATS, type StreamConverter, type StreamConverterOptions } from './formats.js';
import type { StreamDecoder } from './binding.js';
import { nativeBinding } from './load-binding.js';
import {
  CONVERTIBLE_FORMATS,
  type ConvertibleFormat,
  type ConvertOptions,
  type ConvertStats,
  type DiskImageInfo,
  type ImageInfo,
  type InfoOf,
  type RangeReader,
} from './types.js';

export type {
  BlockMapFormat,
  ConvertibleFormat,
  DiskImageInfo,
  ImageInfo,
  InfoOf,
  ConvertOptions,
  ConvertStats,
  ConvertTarget,
  Qcow2Info,
  RangeReader,
  TargetKind,
} from './types.js';
export { BLOCK_MAP_FORMATS, CONVERTIBLE_FORMATS } from './types.js';
export {
  IMAGE_FORMATS,
  isVmdkDescriptor,
  sniffTrailer,
  TRAILER_BYTES,
  type HeadRefusal,
  type ImageFormatRow,
  type Signature,
  type StreamConverter,
  type StreamConverterOptions,
} from './formats.js';
export { isQcow2Header } from './qcow2-map.js';

/** Chunks in flight for local files: both cores decompress while reads and writes overlap. */
const FILE_CONCURRENCY = 4;
/** Chunks in flight for remote readers (each fetches its ranges in parallel). */
const RANGED_CONCURRENCY = 4;

/** True for the formats the converter turns into raw. */
export function isConvertibleFormat(format: string): format is ConvertibleFormat {
  return CONVERTIBLE_FORMATS.some((f) => f === format);
}

/** The public info of a VDI/VHD/VHDX/VMDK image, for callers holding an {@link ImageInfo}. */
export function isDiskImageInfo(info: ImageInfo): info is DiskImageInfo {
  return info.format !== 'qcow2';
}

/**
 * What `qemu-img info` would report about an image of `format` (header only; the tables are
 * validated when converting). Never refuses (see `refusal`); throws on invalid images.
 */
export function readImageInfo<F extends ConvertibleFormat>(
  format: F,
  reader: RangeReader,
  signal?: AbortSignal,
): Promise<InfoOf<F>> {
  return IMAGE_FORMATS[format].readInfo(reader, signal);
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

/** Options of the conversions; `prepareTarget` sees the info of the format converted. */
export type ImageConvertOptions<I = ImageInfo> = ConvertOptions<I> & {
  readonly concurrency?: number;
  /** Where a streamOptimized VMDK's metadata is spilled (it converts in order); default tmp. */
  readonly spillDir?: string;
};

/**
 * Converts a local image file of `format` to raw with random access: the native workers pread
 * only the metadata and allocated blocks, no bytes pass through JavaScript.
 */
export async function convertImageFile<F extends ConvertibleFormat>(
  format: F,
  path: string,
  options: ImageConvertOptions<InfoOf<F>>,
): Promise<ConvertStats> {
  let reader: FileRangeReader | undefined;
  try {
    reader = await openFileRangeReader(path);
    return await IMAGE_FORMATS[format].convert(reader, {
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
 * Converts an image of `format` through a random-access reader (HTTP or S3 ranges): reads the
 * metadata, then only the allocated blocks, coalesced and `concurrency` chunks at a time.
 */
export function convertImageRanged<F extends ConvertibleFormat>(
  format: F,
  reader: RangeReader,
  options: ImageConvertOptions<InfoOf<F>>,
): Promise<ConvertStats> {
  // A reader with an `fd` field would be read natively; hide it so only `read` is used.
  const source: RangeReader = {
    size: reader.size,
    read: (offset, length, signal) => reader.read(offset, length, signal),
  };
  return IMAGE_FORMATS[format].convert(source, {
    ...options,
    concurrency: options.concurrency ?? RANGED_CONCURRENCY,
  });
}

/**
 * A Writable for sequential input of `format` (decompressed stream, upload, registry layer):
 * converts while the bytes stream, spilling to a temporary file under `spillDir` only what
 * arrives before the metadata that places it; the spill file is deleted at the end. A fixed VHD
 * is refused here: it streams as a raw image whose last 512 bytes are the footer. Await `result`.
 */
export function createImageStreamConverter<F extends ConvertibleFormat>(
  format: F,
  options: StreamConverterOptions<InfoOf<F>>,
): StreamConverter {
  return IMAGE_FORMATS[format].createStreamConverter(options);
}

/** Makes [offset, offset+length) of `fd` read as zeros, efficiently (BLKZEROOUT, fallocate). */
export async function zeroRange(fd: number, offset: number, length: number): Promise<void> {
  try {
    await nativeBinding().zeroRange(fd, offset, length);
  } catch (err) {
    throw toConvertError(err);
  }
}

/**
 * Writes `buffers` back to back from `offset` on a native worker: blocks aligned to 4 KiB go
 * through `directFd` (the same file opened with O_DIRECT), the edges through `fd`.
 */
export async function writeAt(
  fd: number,
  directFd: number,
  buffers: readonly Buffer[],
  offset: number,
): Promise<void> {
  try {
    await nativeBinding().writeAt(fd, directFd, buffers, offset);
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
    pairs = await nativeBinding().dataExtents(fd, start, end, maxExtents);
  } catch (err) {
    throw toConvertError(err);
  }
  const out: DataExtent[] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2)
    out.push({ offset: pairs[i] ?? 0, length: pairs[i + 1] ?? 0 });
  return out;
}

export type { RawDecodeStep, StreamDecoder } from './binding.js';

/**
 * The addon's streaming decoder of a whole compressed image (xz on `threads` threads, or gzip);
 * importer/decompress/native-decoder.ts wraps it in a stream.
 */
export function createStreamDecoder(format: 'xz' | 'gzip', threads: number): StreamDecoder {
  return new (nativeBinding().StreamDecoder)(format, threads);
}
