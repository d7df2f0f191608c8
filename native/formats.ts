// SPDX-License-Identifier: Apache-2.0
/**
 * The table of image formats: for each format the converter turns into raw, how to recognise it
 * (signatures at its start; a fixed VHD by its footer at the end), what to refuse at sight (a
 * VMDK text descriptor), how to read its info (`qemu-img info`) with random access or from the
 * head of a stream, and its random-access and streaming converters. The sniffer
 * (importer/format/sniff.ts), the import pipeline and `cdi info` read this table; adding a format
 * is adding a row (and its C++ core). Every function here throws CdiErrors.
 */
import type { Writable } from 'node:stream';

import { CdiError, ErrorCodes, type ErrorCode } from '../common/errors.js';
import { formatBytes } from '../common/quantity.js';
import {
  blockMapOpener,
  readBlockMapInfo,
  readBlockMapInfoFromHead,
  type BlockMapSpec,
} from './block-map.js';
import { BlockMapStreamConverter } from './block-map-stream.js';
import { toConvertError } from './errors.js';
import { convertInOrder, DEFAULT_SPILL_DIR } from './in-order.js';
import { nativeBinding } from './load-binding.js';
import { openQcow2, QCOW2_MAGIC, readQcow2Info } from './qcow2-map.js';
import { Qcow2StreamConverter } from './qcow2-stream.js';
import {
  convertRandomAccess,
  type ImageOpener,
  type ImageSource,
  type InfoBase,
  type RandomAccessOptions,
} from './random-access.js';
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
import { fixedVhdVirtualSize, VHD_FOOTER_BYTES } from './vhd-footer.js';

/** Why an image cannot be imported, with its error code. */
export interface HeadRefusal {
  readonly code: ErrorCode;
  readonly message: string;
}

/** Magic bytes at a fixed offset of the image's start. */
export interface Signature {
  readonly offset: number;
  readonly magic: Buffer;
}

/** Options of a streaming converter. */
export type StreamConverterOptions<I> = ConvertOptions<I> & {
  /** Directory for the spill file (deleted at the end). */
  readonly spillDir: string;
  /** Image length when known (Content-Length); tightens validation. */
  readonly size?: number;
};

/** A Writable fed the image in order; await `result`. */
export type StreamConverter = Writable & { readonly result: Promise<ConvertStats> };

/** One row of the table. */
export interface ImageFormatRow<I> {
  /** Signatures at the start; the first format (in table order) with a match wins. */
  readonly signatures: readonly Signature[];
  /**
   * An image with nothing at its start that its last `bytes` identify (a fixed VHD is the raw
   * disk plus a footer): its info when `tail` is such a trailer of a `fileSize`-byte file.
   */
  readonly trailer?: {
    readonly bytes: number;
    info(tail: Buffer, fileSize: number): I | undefined;
  };
  /** Why a head that carries the signature cannot be imported at all (VMDK descriptor). */
  refuseHead(head: Buffer): HeadRefusal | undefined;
  /** Header only (tables' placement is validated when converting); a VHDX reads its metadata. */
  readInfo(reader: RangeReader, signal?: AbortSignal): Promise<I>;
  /** Bytes from the start of a stream that {@link readInfoFromHead} needs. */
  readonly headInfoBytes: number;
  /** Info from the first bytes of a stream (compressed, or served without ranges). */
  readInfoFromHead(head: Buffer, signal?: AbortSignal): Promise<I>;
  /** Random access: reads only metadata and allocated blocks, `concurrency` chunks at a time. */
  convert(source: ImageSource, options: RandomAccessOptions<I>): Promise<ConvertStats>;
  /** Sequential input: converts as the bytes stream by, spilling what arrives before its map. */
  createStreamConverter(options: StreamConverterOptions<I>): StreamConverter;
}

/** The whole table: one row per convertible format, keyed by its name. */
export type ImageFormatTable = { readonly [F in ConvertibleFormat]: ImageFormatRow<InfoOf<F>> };

/** How much of a stream `cdi info` keeps to read a qcow2 or VHDX header and its tables. */
const METADATA_WINDOW = 8 << 20;

/** A reader over the first bytes of a stream; asking past them is a clear error. */
function windowReader(format: ConvertibleFormat, window: Buffer): RangeReader {
  return {
    size: window.length,
    read: (offset, length) => {
      if (offset + length > window.length) {
        return Promise.reject(
          new CdiError(
            ErrorCodes.ImageInvalid,
            `${format} metadata beyond the first ${formatBytes(window.length)} of a compressed stream`,
          ),
        );
      }
      return Promise.resolve(window.subarray(offset, offset + length));
    },
  };
}

/** Runs a native call, turning what it throws into a CdiError. */
async function wrapped<T>(signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw toConvertError(err, signal);
  }
}

function randomAccess<I extends InfoBase>(open: ImageOpener<I>): ImageFormatRow<I>['convert'] {
  return (source, options) =>
    wrapped(options.signal, () => convertRandomAccess(nativeBinding(), open, source, options));
}

const noRefusal = (): undefined => undefined;

/** The first line of a VMDK text descriptor (monolithicFlat, twoGbMaxExtent*, vmfs). */
const VMDK_DESCRIPTOR = Buffer.from('# Disk DescriptorFile', 'latin1');

/** True when `head` starts a VMDK text descriptor (its extents live in other files). */
export function isVmdkDescriptor(head: Buffer): boolean {
  return (
    head.length >= VMDK_DESCRIPTOR.length &&
    head.subarray(0, VMDK_DESCRIPTOR.length).equals(VMDK_DESCRIPTOR)
  );
}

/** The extent lines of a VMDK descriptor (`RW 2048 FLAT "disk-flat.vmdk" 0`), for messages. */
export function vmdkDescriptorExtents(head: Buffer): string[] {
  return head
    .toString('latin1')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(RW|RDONLY|NOACCESS)\s/.test(l));
}

/** A VMDK descriptor keeps its data in extent files, which an import never opens. */
function refuseVmdkDescriptor(head: Buffer): HeadRefusal | undefined {
  if (!isVmdkDescriptor(head)) return undefined;
  const extents = vmdkDescriptorExtents(head);
  return {
    code: ErrorCodes.ImageExternalData,
    message:
      `vmdk descriptor file keeps its data in extent files${extents.length > 0 ? ` (${extents.join('; ')})` : ''}; ` +
      'extent files are never opened: import a monolithicSparse or streamOptimized vmdk instead',
  };
}

/** Bytes of the start the VDI, VHD and VMDK parsers need (header, VHD dynamic header, descriptor). */
const BLOCK_MAP_HEAD_BYTES = 64 * 1024;

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** VMDK4 header fields that tell a streamOptimized image (src/image_format.cc reads them all). */
const VMDK_FLAGS = 8;
const VMDK_COMPRESSION = 77;
const VMDK_FLAG_MARKERS = 1 << 17;
const VMDK_DEFLATE = 1;

/** True when a VMDK header announces deflated grains with markers (streamOptimized). */
export function isStreamOptimizedVmdk(header: Buffer): boolean {
  return (
    header.length >= 512 &&
    header.subarray(0, 4).equals(latin1('KDMV')) &&
    header.readUInt16LE(VMDK_COMPRESSION) === VMDK_DEFLATE &&
    (header.readUInt32LE(VMDK_FLAGS) & VMDK_FLAG_MARKERS) !== 0
  );
}

/**
 * The VMDK random-access converter: a streamOptimized image is read in order through the stream
 * converter (in-order.ts: one path, one verdict), any other with random access.
 */
function convertVmdk(spec: BlockMapSpec): ImageFormatRow<DiskImageInfo>['convert'] {
  const random = randomAccess(blockMapOpener(spec));
  return async (source, options) => {
    const header = await wrapped(options.signal, () =>
      source.read(0, Math.min(512, source.size), options.signal),
    );
    if (!isStreamOptimizedVmdk(header)) return random(source, options);
    return wrapped(options.signal, () =>
      convertInOrder(
        new BlockMapStreamConverter(nativeBinding(), spec, {
          ...options,
          spillDir: options.spillDir ?? DEFAULT_SPILL_DIR,
        }),
        source,
        options.signal,
      ),
    );
  };
}

/** A row of the block-map formats (src/image_format.cc). */
function blockMapRow(
  spec: BlockMapSpec,
  row: Pick<ImageFormatRow<DiskImageInfo>, 'signatures'> &
    Partial<Pick<ImageFormatRow<DiskImageInfo>, 'trailer' | 'refuseHead'>>,
): ImageFormatRow<DiskImageInfo> {
  const { format } = spec;
  const readInfo = (reader: RangeReader, signal?: AbortSignal): Promise<DiskImageInfo> =>
    wrapped(signal, () => readBlockMapInfo(nativeBinding(), spec, reader, signal));
  // When the info needs tables past the header (VHDX), a stream's metadata window serves them.
  const fromWindow = spec.infoRounds > 0;
  return {
    refuseHead: noRefusal,
    ...row,
    readInfo,
    headInfoBytes: fromWindow ? METADATA_WINDOW : spec.headBytes,
    readInfoFromHead: (head, signal) =>
      fromWindow
        ? readInfo(windowReader(format, head), signal)
        : wrapped(signal, () =>
            Promise.resolve(readBlockMapInfoFromHead(nativeBinding(), format, head)),
          ),
    convert: format === 'vmdk' ? convertVmdk(spec) : randomAccess(blockMapOpener(spec)),
    createStreamConverter: (options) => new BlockMapStreamConverter(nativeBinding(), spec, options),
  };
}

/** See the module comment. Sniffing tries the rows in {@link CONVERTIBLE_FORMATS} order. */
export const IMAGE_FORMATS: ImageFormatTable = {
  qcow2: {
    signatures: [{ offset: 0, magic: QCOW2_MAGIC }],
    refuseHead: noRefusal,
    readInfo: (reader, signal) =>
      wrapped(signal, () => readQcow2Info(nativeBinding(), reader, signal)),
    headInfoBytes: METADATA_WINDOW,
    readInfoFromHead: (head, signal) =>
      wrapped(signal, () => readQcow2Info(nativeBinding(), windowReader('qcow2', head), signal)),
    convert: randomAccess(openQcow2),
    createStreamConverter: (options) => new Qcow2StreamConverter(nativeBinding(), options),
  },
  vmdk: blockMapRow(
    { format: 'vmdk', headBytes: BLOCK_MAP_HEAD_BYTES, infoRounds: 0 },
    {
      // A text descriptor carries the format's name too: sniffed so the import refuses it.
      signatures: [
        { offset: 0, magic: latin1('KDMV') },
        { offset: 0, magic: VMDK_DESCRIPTOR },
      ],
      refuseHead: refuseVmdkDescriptor,
    },
  ),
  vdi: blockMapRow(
    { format: 'vdi', headBytes: BLOCK_MAP_HEAD_BYTES, infoRounds: 0 },
    {
      signatures: [{ offset: 0x40, magic: Buffer.from([0x7f, 0x10, 0xda, 0xbe]) }],
    },
  ),
  vhd: blockMapRow(
    { format: 'vhd', headBytes: BLOCK_MAP_HEAD_BYTES, infoRounds: 0 },
    {
      signatures: [{ offset: 0, magic: latin1('conectix') }],
      trailer: {
        bytes: VHD_FOOTER_BYTES,
        info: (tail, fileSize) => {
          const virtualSize = fixedVhdVirtualSize(tail, fileSize);
          return virtualSize === undefined
            ? undefined
            : { format: 'vhd', subformat: 'fixed', virtualSize, blockSize: 0, compressed: false };
        },
      },
    },
  ),
  // The file identifier, both headers and both region tables; the size is in the metadata region.
  vhdx: blockMapRow(
    { format: 'vhdx', headBytes: 320 * 1024, infoRounds: 1 },
    { signatures: [{ offset: 0, magic: latin1('vhdxfile') }] },
  ),
};

/**
 * The image whose trailer `tail` (the last bytes of a `fileSize`-byte image) is, if any: what its
 * footer says (a fixed VHD's format, subformat and virtual size).
 */
export function sniffTrailer(tail: Buffer, fileSize: number): ImageInfo | undefined {
  for (const format of CONVERTIBLE_FORMATS) {
    const trailer: ImageFormatRow<ImageInfo>['trailer'] = IMAGE_FORMATS[format].trailer;
    if (trailer === undefined || tail.length < trailer.bytes) continue;
    const info = trailer.info(tail.subarray(tail.length - trailer.bytes), fileSize);
    if (info !== undefined) return info;
  }
  return undefined;
}

/** Bytes at the end of an image {@link sniffTrailer} looks at. */
export const TRAILER_BYTES = Math.max(
  0,
  ...CONVERTIBLE_FORMATS.map((f) => IMAGE_FORMATS[f].trailer?.bytes ?? 0),
);
