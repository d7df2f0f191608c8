// SPDX-License-Identifier: Apache-2.0
/**
 * The raw surface of `build/Release/cdi_native.node`: a thin (but safe!) binding over the plain
 * C++ cores in `src/` (qcow2 in `qcow2.{h,cc}`, the block-map formats in `image_format.{h,cc}`).
 * Only `native/load-binding.ts` loads it; everything outside `native/` uses the typed wrapper
 * (`native/index.ts`). Errors thrown or rejected here are `Error`s with a string `code` (one of the
 * `CDI_*` codes of common/errors.ts) and a lower-case message with offsets and sizes.
 */
import type { BlockMapFormat } from './types.js';

/** Header facts, from `Qcow2Map::Info` (src/qcow2_map.cc), fields of `qcow2::Header`. */
export interface RawQcow2Info {
  readonly version: number;
  readonly virtualSize: number;
  readonly clusterSize: number;
  readonly compressionType: 'zlib' | 'zstd';
  readonly extendedL2: boolean;
  readonly dirty: boolean;
  readonly corrupt: boolean;
  readonly encrypted: boolean;
  readonly snapshotCount: number;
  /** L1 entries needed to cover the virtual size (`qcow2::Header::l1_entries`). */
  readonly l1Entries: number;
  readonly l1Offset: number;
  /** Entries per L2 table. */
  readonly l2Entries: number;
  readonly refcountTableOffset: number;
  readonly refcountTableBytes: number;
  /** Refcount entries are 2^refcountOrder bits wide. */
  readonly refcountOrder: number;
  readonly backingFile?: string;
  readonly externalDataFile?: string;
  /** Why conversion is refused (backing file, external data file, encryption). */
  readonly refusal?: { readonly code: string; readonly message: string };
}

/** Result of one chunk (`qcow2::ChunkStats`). */
export interface RawChunkStats {
  readonly dataBytesWritten: number;
  readonly zeroBytes: number;
  readonly bytesRead: number;
}

/**
 * One guest chunk for {@link Qcow2Map.processChunk}; corresponds to `cdi::ChunkJob`.
 * Exactly one of `sourceFd` or `pieces`/`pieceOffsets` is given.
 */
export interface RawChunk {
  /** Target file descriptor, written with pwrite. */
  readonly fd: number;
  /** The target opened with O_DIRECT: aligned blocks are written through it. */
  readonly directFd?: number;
  /** Skip all-zero 4 KiB blocks (the target already reads as zeros). */
  readonly sparse: boolean;
  readonly guestOffset: number;
  /** At most 64 MiB. */
  readonly guestLength: number;
  /** Extents inside the chunk, 5 numbers each as produced by {@link Qcow2Map.mapL2}. */
  readonly extents: Float64Array;
  /** Read host bytes with pread from this descriptor. */
  readonly sourceFd?: number;
  /** Host bytes already fetched, each starting at the matching `pieceOffsets` entry. */
  readonly pieces?: readonly Buffer[];
  readonly pieceOffsets?: readonly number[];
}

/**
 * A validated qcow2 header (`cdi::Qcow2Map`, src/qcow2_map.cc). The constructor parses the first
 * bytes of the image (`qcow2::ParseHeader`) and throws on structurally invalid images.
 */
export declare class Qcow2Map {
  /** @param head - the image's first min(size, clusterSize + 1024) bytes. */
  constructor(head: Buffer, fileSize: number);
  /** `Qcow2Map::Info`. */
  info(): RawQcow2Info;
  /**
   * `qcow2::ParseL1`: L2 table offset per L1 entry (0 = unallocated), validated; claims the
   * header, L1, refcount and snapshot tables and every L2 table (`CDI_IMAGE_OVERLAP` on reuse).
   */
  parseL1(l1: Buffer): Float64Array;
  /** `qcow2::ClaimRefcountBlocks`: claims the blocks the refcount table names. */
  claimRefcountTable(table: Buffer): void;
  /**
   * `qcow2::MapL2`: the L2 table of entry `l1Index` as extents in guest order, 5 numbers each:
   * guest offset, length, kind (0 zero, 1 data, 2 compressed), host offset, host length.
   * Claims every allocated cluster (`CDI_IMAGE_OVERLAP` when it is already in use).
   */
  mapL2(l1Index: number, l2: Buffer): Float64Array;
  /** `qcow2::ProcessChunk` on the libuv pool (`cdi::ChunkWorker`). */
  processChunk(chunk: RawChunk): Promise<RawChunkStats>;
}

/** Header facts of a VDI, VHD or VMDK image, from `ImageMap::Info` (src/image_map.cc). */
export interface RawImageInfo {
  readonly format: BlockMapFormat;
  readonly subformat: string;
  readonly virtualSize: number;
  /** Guest bytes per map entry (VDI block, VHD block, VMDK grain). */
  readonly blockSize: number;
  /** Map entries covering the virtual size. */
  readonly blockCount: number;
  /** VMDK streamOptimized grains (deflate behind markers). */
  readonly compressed: boolean;
  /** VHD fixed: guest byte n is file byte n. */
  readonly fixed: boolean;
  /** VHD: the footer was found at the end of the file (fixed disks). */
  readonly footerAtEnd: boolean;
  /** VMDK: offset of the first grain (where a stream's markers begin). */
  readonly grainOffset: number;
  /** VHD creator application. */
  readonly creator?: string;
  readonly refusal?: { readonly code: string; readonly message: string };
}

/**
 * A validated VDI/VHD/VMDK header and its block map (`cdi::ImageMap`, src/image_map.cc over
 * `imgfmt::BlockMap`). Feed the table ranges `needs()` lists until it is empty, then map blocks.
 */
export declare class ImageMap {
  /**
   * @param head - the image's first min(size, 64 KiB) bytes (vhdx: 320 KiB).
   * A VHDX knows its size and block size only once its metadata region is fed: call `info()`
   * again after `feed`.
   * @param tail - its last min(size, 1536) bytes (empty when streaming).
   * @param fileSize - the image length, or -1 when unknown (streaming).
   */
  constructor(format: BlockMapFormat, head: Buffer, tail: Buffer, fileSize: number);
  info(): RawImageInfo;
  /** Table ranges still to be fed, 2 numbers each (offset, length). */
  needs(): Float64Array;
  /** Feeds one needed range; returns true once the map is complete (and validated). */
  feed(offset: number, table: Buffer): boolean;
  /** Extents of blocks [first, first+count) as in {@link Qcow2Map.mapL2} (kind 3: VMDK grain). */
  mapBlocks(first: number, count: number): Float64Array;
  /** `qcow2::ProcessChunk` on the libuv pool, with this image's grain size. */
  processChunk(chunk: RawChunk): Promise<RawChunkStats>;
}

/** What one {@link StreamDecoder.decode} call did. */
export interface RawDecodeStep {
  /** Input bytes used, across the pieces; the rest must be passed again. */
  readonly consumed: number;
  /** Bytes written, filling the output buffers in turn from `firstOffset`. */
  readonly produced: number;
  /** The stream is complete (reported only by a call with `finish`). */
  readonly ended: boolean;
  /** Per output buffer the call wrote to: every byte it wrote there is zero. */
  readonly zero: readonly boolean[];
}

/**
 * A streaming decoder of a whole compressed image (`cdi::DecoderWrap` over src/stream_decoder.cc):
 * xz by liblzma's multi-threaded decoder on `threads` threads, gzip by ISA-L's inflate. Corrupt,
 * truncated or trailing input rejects with `CDI_DECOMPRESS_FAILED`.
 */
export declare class StreamDecoder {
  constructor(format: 'xz' | 'gzip', threads: number);
  /**
   * Decodes the `input` pieces in turn on the libuv pool into `outputs` (the first from
   * `firstOffset`), filling one after the other, until they are full, the input is used up or
   * the stream ends; one call at a time. `finish`: no input follows this. The buffers must stay
   * untouched until the promise settles.
   */
  decode(
    input: readonly Buffer[],
    outputs: readonly Buffer[],
    firstOffset: number,
    finish: boolean,
  ): Promise<RawDecodeStep>;
  /** Frees the decoder (its threads and buffers) once no call is in flight. */
  close(): void;
}

/** `qcow2::ZeroRange` on the libuv pool: BLKZEROOUT, fallocate, or writing zeros. */
export declare function zeroRange(fd: number, offset: number, length: number): Promise<void>;

/**
 * Writes `buffers` back to back from file offset `offset`; aligned blocks through `directFd` (the
 * same file opened with O_DIRECT; -1 for none), the rest through `fd`.
 */
export declare function writeAt(
  fd: number,
  directFd: number,
  buffers: readonly Buffer[],
  offset: number,
): Promise<void>;

/**
 * The data ranges of `fd` within [start, end) by SEEK_DATA/SEEK_HOLE, at most `maxExtents` of
 * them, as offset, length pairs; the whole range when the file cannot report holes.
 */
export declare function dataExtents(
  fd: number,
  start: number,
  end: number,
  maxExtents: number,
): Promise<Float64Array>;

/** The module object. */
export interface Binding {
  readonly Qcow2Map: typeof Qcow2Map;
  readonly ImageMap: typeof ImageMap;
  readonly StreamDecoder: typeof StreamDecoder;
  readonly zeroRange: typeof zeroRange;
  readonly writeAt: typeof writeAt;
  readonly dataExtents: typeof dataExtents;
}
