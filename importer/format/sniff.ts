// SPDX-License-Identifier: Apache-2.0
/**
 * Format detection by magic bytes, never by file name (CDI `pkg/image/filefmt.go`): a readonly
 * table of signatures (the compression wrappers here, the disk image formats from the native
 * format table) and a pure function over the first bytes of a stream.
 */
import {
  CONVERTIBLE_FORMATS,
  IMAGE_FORMATS,
  sniffTrailer,
  TRAILER_BYTES,
  type RangeReader,
} from '../../native/index.js';

/** Compression wrappers the importer unwraps while streaming. */
export const CompressionFormats = ['gzip', 'xz', 'zstd', 'lz4', 'bzip2'] as const;
export type CompressionFormat = (typeof CompressionFormats)[number];

/** Disk image formats; `raw` is the fallback (ISO included). */
export const ImageFormats = [...CONVERTIBLE_FORMATS, 'tar', 'raw'] as const;
export type ImageFormat = (typeof ImageFormats)[number];

export type DetectedFormat = CompressionFormat | Exclude<ImageFormat, 'raw'>;

/** How many bytes of header the sniffer needs (CDI `MaxExpectedHdrSize`). */
export const SNIFF_BYTES = 512;

interface Signature {
  readonly format: DetectedFormat;
  readonly offset: number;
  readonly magic: Buffer;
}

const SIGNATURES: readonly Signature[] = [
  { format: 'gzip', offset: 0, magic: Buffer.from([0x1f, 0x8b]) },
  { format: 'xz', offset: 0, magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) },
  { format: 'zstd', offset: 0, magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]) },
  { format: 'lz4', offset: 0, magic: Buffer.from([0x04, 0x22, 0x4d, 0x18]) },
  { format: 'bzip2', offset: 0, magic: Buffer.from('BZh', 'latin1') },
  ...CONVERTIBLE_FORMATS.flatMap((format) =>
    IMAGE_FORMATS[format].signatures.map((sig) => ({ format, ...sig })),
  ),
  { format: 'tar', offset: 0x101, magic: Buffer.from('ustar', 'latin1') },
];

/** True for the formats that {@link sniffFormat} unwraps as compression. */
export function isCompression(format: DetectedFormat | 'raw'): format is CompressionFormat {
  return (CompressionFormats as readonly string[]).includes(format);
}

/**
 * Returns the format whose signature matches `head`, or `undefined` (raw). A bzip2 match also
 * requires a valid block size digit, since `BZh` alone is plausible text.
 */
export function sniffFormat(head: Buffer): DetectedFormat | undefined {
  for (const sig of SIGNATURES) {
    const end = sig.offset + sig.magic.length;
    if (head.length < end) continue;
    if (!head.subarray(sig.offset, end).equals(sig.magic)) continue;
    if (sig.format === 'bzip2' && !isBzip2Header(head)) continue;
    return sig.format;
  }
  return undefined;
}

function isBzip2Header(head: Buffer): boolean {
  const level = head[3];
  // 'BZh' + '1'..'9' + block magic 0x314159265359 (or end-of-stream 0x177245385090 when empty).
  if (level === undefined || level < 0x31 || level > 0x39) return false;
  if (head.length < 10) return true;
  const block = head.subarray(4, 10).toString('hex');
  return block === '314159265359' || block === '177245385090';
}

/** What {@link sniffRandomAccess} found. */
export interface SniffedImage {
  /** The format, or undefined for raw. */
  readonly format: DetectedFormat | undefined;
  /** The first {@link SNIFF_BYTES} (fewer for a shorter image). */
  readonly head: Buffer;
}

/**
 * The format of an image with random access: from its head, else (a fixed VHD has nothing at its
 * start) from its last bytes.
 */
export async function sniffRandomAccess(
  reader: RangeReader,
  signal: AbortSignal,
): Promise<SniffedImage> {
  const headLength = Math.min(SNIFF_BYTES, reader.size);
  const head = headLength > 0 ? await reader.read(0, headLength, signal) : Buffer.alloc(0);
  const format = sniffFormat(head);
  if (format !== undefined || reader.size < 2 * TRAILER_BYTES) return { format, head };
  const tail = await reader.read(reader.size - TRAILER_BYTES, TRAILER_BYTES, signal);
  return { format: sniffTrailer(tail, reader.size)?.format, head };
}
