// SPDX-License-Identifier: Apache-2.0
/**
 * Public types of the native converter and the names of the formats it converts; re-exported by
 * `native/index.ts`. What each format needs (signature, info, converters) is in formats.ts.
 */

/** Random access to the image bytes (local file, HTTP ranges, S3 ranges). */
export interface RangeReader {
  /** Total image length in bytes. */
  readonly size: number;
  /** Exactly `length` bytes at `offset`, or throws. */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer>;
}

/** What the target is: a file (holes read as zero) or a block device (old content unknown). */
export type TargetKind = 'file' | 'block';

/** Where the raw image goes; opened, sized, synced and closed by the importer's sink. */
export interface ConvertTarget {
  /** Opened read-write. */
  readonly fd: number;
  /**
   * `file`: already truncated to the virtual size, holes read as zero; zero runs are never
   * written. `block`: ranges that are not data are zeroed unless `targetIsZeroed`.
   */
  readonly kind: TargetKind;
  readonly targetIsZeroed?: boolean;
  /** The same target opened with O_DIRECT: aligned blocks are written through it. */
  readonly directFd?: number;
}

/** What `readImageInfo('qcow2')` reports, like `qemu-img info`. */
export interface Qcow2Info {
  readonly format: 'qcow2';
  readonly version: 2 | 3;
  readonly virtualSize: number;
  readonly clusterSize: number;
  readonly compressionType: 'zlib' | 'zstd';
  readonly extendedL2: boolean;
  readonly dirty: boolean;
  readonly backingFile?: string;
  readonly externalDataFile?: string;
  readonly encrypted: boolean;
  readonly snapshotCount: number;
  readonly l1Entries: number;
  /** Set when conversion would be refused (backing file, external data file, encryption). */
  readonly refusal?: { code: string; message: string };
}

/** Counters of one conversion. */
export interface ConvertStats {
  /** Image bytes read (metadata and clusters) or received. */
  readonly bytesRead: number;
  /** Guest bytes written to the target. */
  readonly dataBytesWritten: number;
  /** Guest bytes not written because they read as zero (holes or zeroed ranges). */
  readonly zeroBytes: number;
  /** Bytes written to the spill file (stream converter only). */
  readonly spilledBytes: number;
}

/** The formats converted through the block-map cores (`src/image_format.cc`). */
export const BLOCK_MAP_FORMATS = ['vmdk', 'vdi', 'vhd', 'vhdx'] as const;
export type BlockMapFormat = (typeof BLOCK_MAP_FORMATS)[number];

/** Every format the native converter turns into raw, in the order their signatures are tried. */
export const CONVERTIBLE_FORMATS = ['qcow2', ...BLOCK_MAP_FORMATS] as const;
export type ConvertibleFormat = (typeof CONVERTIBLE_FORMATS)[number];

/** What `readImageInfo` reports for a VDI, VHD, VHDX or VMDK image, like `qemu-img info`. */
export interface DiskImageInfo {
  readonly format: BlockMapFormat;
  /**
   * vdi: `dynamic` | `static`; vhd: `dynamic` | `fixed` | `differencing`; vmdk: the descriptor's
   * createType (`monolithicSparse`, `streamOptimized`, ...); vhdx: `dynamic` | `differencing`.
   */
  readonly subformat: string;
  readonly virtualSize: number;
  /** Guest bytes per map entry: VDI block, VHD block, VMDK grain. */
  readonly blockSize: number;
  /** VMDK streamOptimized: deflate grains behind markers. */
  readonly compressed: boolean;
  /** VHD: the creator application of the footer (decides qemu's size rule). */
  readonly creator?: string;
  /** Set when conversion would be refused (differencing image, parent). */
  readonly refusal?: { code: string; message: string };
}

/** What `readImageInfo` reports. */
export type ImageInfo = Qcow2Info | DiskImageInfo;

/** The info of format `F`. */
export type InfoOf<F extends ConvertibleFormat> = F extends 'qcow2' ? Qcow2Info : DiskImageInfo;

/** Options shared by every conversion. */
export interface ConvertOptions<I = Qcow2Info> {
  readonly target: ConvertTarget;
  readonly signal?: AbortSignal;
  /** Guest bytes done / virtual size. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Called once after the header is validated and before the first write, awaited. */
  readonly prepareTarget?: (info: I) => Promise<void>;
}
