// SPDX-License-Identifier: Apache-2.0
import { read } from 'node:fs';
import { pipeline as linkStreams, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import { ContentTypes, type ContentType } from '../../common/contract.js';
import { CdiError, ErrorCodes, isCdiError, wrapError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { ChecksumTee, type ExpectedChecksum } from '../checksum/checksum.js';
import { ByteCounter, ProgressTracker, type ProgressListener } from '../progress/byte-counter.js';
import { unwrapCompression } from '../decompress/unwrap.js';
import {
  SNIFF_BYTES,
  sniffRandomAccess,
  type CompressionFormat,
  type ImageFormat,
} from '../format/sniff.js';
import {
  CONVERTIBLE_FORMATS,
  isConvertibleFormat,
  sniffTrailer,
  TRAILER_BYTES,
  type ConvertibleFormat,
  type ImageInfo,
} from '../../native/index.js';
import { extractArchive } from '../archive/extract.js';
import type { DataSource, SourceInfo } from '../sources/types.js';
import { RawTarget } from '../sink/raw-target.js';
import { writeRawStream } from './raw.js';
import { convertImageLocalFile, convertImageStream, refuseByHead } from './disk-image.js';

/** Where an import writes. */
export type ImportTarget =
  | { readonly kind: 'file' | 'block'; readonly path: string }
  | { readonly kind: 'dir'; readonly path: string };

/** One import: everything {@link runImport} needs, in one options object. */
export interface ImportJob {
  readonly source: DataSource;
  /** `http`, `s3`, ... for CDI's "Unable to connect to <kind> data source" message. */
  readonly sourceKind: string;
  readonly contentType: ContentType;
  readonly target: ImportTarget;
  /** The claim size; a file image is grown to the usable space when given. */
  readonly requestedSize?: number;
  readonly filesystemOverhead: number;
  readonly preallocation: boolean;
  readonly checksum?: ExpectedChecksum;
  /** Directory for the streaming converter's spill file (scratch when mounted, else the target's). */
  readonly spillDir: string;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly onProgress?: ProgressListener;
}

/** What an import did. */
export interface ImportResult {
  readonly format: ImageFormat | 'archive';
  readonly compressions: readonly CompressionFormat[];
  /** Raw image size after resize (0 for archives). */
  readonly size: number;
  readonly bytesTransferred: number;
  readonly dataBytesWritten: number;
  /** Bytes the streaming converter had to spill to a temporary file. */
  readonly spilledBytes: number;
  readonly preallocationApplied: boolean;
  /** How the image was read: one sequential stream, or random access (ranges / local file). */
  readonly access: 'stream' | 'random';
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * Runs one import: source → byte counter → checksum tee → decompression → format → sink
 * (CDI's DataProcessor, with streaming conversion instead of a scratch copy). Errors come out
 * wrapped with CDI's phase messages ("Unable to connect to http data source: ...", "Unable to
 * process data: ..."), keeping their codes.
 */
export async function runImport(job: ImportJob): Promise<ImportResult> {
  let info: SourceInfo;
  try {
    info = await job.source.info(job.signal);
  } catch (err) {
    throw wrapError(err, `Unable to connect to ${job.sourceKind} data source`);
  }
  job.logger.info('source opened', {
    source: info.displayName,
    length: info.length,
    randomAccess: info.randomAccess,
  });
  try {
    if (job.contentType === ContentTypes.Archive) return await importArchive(job, info);
    return await importDisk(job, info);
  } catch (err) {
    if (job.signal.aborted && !isCdiError(err)) {
      throw new CdiError(ErrorCodes.Aborted, 'import aborted', { cause: err });
    }
    throw wrapError(err, 'Unable to process data');
  } finally {
    await job.source.close();
  }
}

/** The transferred bytes, counted and hashed, ready to be unwrapped. */
interface CountedStream {
  readonly stream: Readable;
  readonly tracker: ProgressTracker;
  readonly tee: ChecksumTee | undefined;
  readonly counted: () => number;
}

async function openCounted(job: ImportJob, info: SourceInfo): Promise<CountedStream> {
  let transferred = 0;
  const tracker = new ProgressTracker(job.onProgress ?? (() => undefined), {
    ...(info.length === undefined ? {} : { total: info.length }),
  });
  const raw = await job.source.stream(job.signal);
  const counter = new ByteCounter((n) => {
    transferred += n;
    tracker.add(n);
  });
  const tee = job.checksum === undefined ? undefined : new ChecksumTee(job.checksum);
  // Linked with the callback form, so a failure anywhere destroys every stage and reaches the
  // reader of the last one, which the single awaited pipeline() of the caller then reports.
  const stream =
    tee === undefined
      ? linkStreams(raw, counter, () => undefined)
      : linkStreams(raw, counter, tee, () => undefined);
  return { stream, tracker, tee, counted: () => transferred };
}

async function importArchive(job: ImportJob, info: SourceInfo): Promise<ImportResult> {
  if (job.target.kind !== 'dir') {
    throw new CdiError(
      ErrorCodes.InvalidArgument,
      'ContentType Archive cannot have block volumeMode',
    );
  }
  const counted = await openCounted(job, info);
  const unwrapped = await unwrapCompression(counted.stream);
  if (unwrapped.format !== 'tar') {
    unwrapped.stream.destroy();
    throw new CdiError(
      ErrorCodes.ArchiveInvalid,
      `content type archive needs a tar archive, found ${unwrapped.format === 'raw' ? 'unrecognised data' : unwrapped.format}`,
    );
  }
  const extracted = await extractArchive({
    input: unwrapped.stream,
    targetDir: job.target.path,
    signal: job.signal,
    beforeCommit: () => counted.tee?.verify(),
  });
  counted.tracker.complete();
  return {
    format: 'archive',
    compressions: unwrapped.compressions,
    size: extracted.bytes,
    bytesTransferred: counted.counted(),
    dataBytesWritten: extracted.bytes,
    spilledBytes: 0,
    preallocationApplied: false,
    access: 'stream',
    labels: info.labels ?? {},
  };
}

async function importDisk(job: ImportJob, info: SourceInfo): Promise<ImportResult> {
  if (job.target.kind === 'dir') {
    throw new CdiError(
      ErrorCodes.InvalidArgument,
      'a kubevirt import needs a file or block target',
    );
  }
  const target = await RawTarget.open({
    path: job.target.path,
    kind: job.target.kind,
    ...(job.requestedSize === undefined ? {} : { requestedSize: job.requestedSize }),
    overhead: job.target.kind === 'block' ? 0 : job.filesystemOverhead,
    preallocation: job.preallocation,
    logger: job.logger,
  });
  try {
    const result = await writeDisk(job, info, target);
    return { ...result, labels: info.labels ?? {} };
  } catch (err) {
    await target.abort();
    throw err;
  }
}

async function writeDisk(
  job: ImportJob,
  info: SourceInfo,
  target: RawTarget,
): Promise<Omit<ImportResult, 'labels'>> {
  // Random access is used for an uncompressed image of a convertible format in a local file when
  // no checksum is asked for (a checksum needs every byte in order). Remote images stream: the
  // files hold only allocated blocks, so ranged reads save no bytes and were measured no faster
  // than one GET (ADR 0017).
  const localPath = info.localPath;
  const readRange = job.source.readRange?.bind(job.source);
  if (job.checksum === undefined && localPath !== undefined && readRange !== undefined) {
    const format = await localImageFormat(job, info, readRange);
    if (format !== undefined) {
      const tracker = new ProgressTracker(job.onProgress ?? (() => undefined));
      const converted = await convertImageLocalFile({
        job,
        format,
        path: localPath,
        target,
        tracker,
      });
      const finished = await target.finish(converted.virtualSize);
      tracker.complete();
      return {
        format,
        compressions: [],
        size: finished.size,
        bytesTransferred: converted.bytesRead,
        dataBytesWritten: converted.dataBytesWritten,
        spilledBytes: 0,
        preallocationApplied: finished.preallocationApplied,
        access: 'random',
      };
    }
  }
  const counted = await openCounted(job, info);
  try {
    return await writeSequential(job, info, target, counted);
  } catch (err) {
    // Stop the download at once: nothing downstream will read it any more.
    counted.stream.destroy();
    throw err;
  }
}

/**
 * The convertible format of a local file, from its head (and, for a fixed VHD, which has nothing
 * at its start, from its last bytes); undefined for raw and everything else.
 */
async function localImageFormat(
  job: ImportJob,
  info: SourceInfo,
  readRange: (offset: number, length: number, signal: AbortSignal) => Promise<Buffer>,
): Promise<ConvertibleFormat | undefined> {
  // A block device reports no length: only its head is looked at.
  const size = info.length ?? SNIFF_BYTES;
  const { format, head } = await sniffRandomAccess(
    { size, read: (o, l, s) => readRange(o, l, s ?? job.signal) },
    job.signal,
  );
  if (format === undefined || !isConvertibleFormat(format)) return undefined;
  refuseByHead(format, head);
  return format;
}

const readFd = promisify(read);

/**
 * A raw stream that ends with the footer of a fixed VHD (nothing marks a fixed VHD at its start)
 * was a fixed VHD: returns its format and qemu's virtual size, or undefined for a plain raw image.
 */
async function strippedTrailer(target: RawTarget, size: number): Promise<ImageInfo | undefined> {
  if (size < 2 * TRAILER_BYTES) return undefined;
  const tail = Buffer.alloc(TRAILER_BYTES);
  const { bytesRead } = await readFd(target.fd, tail, 0, TRAILER_BYTES, size - TRAILER_BYTES);
  if (bytesRead !== TRAILER_BYTES) return undefined;
  return sniffTrailer(tail, size);
}

async function writeSequential(
  job: ImportJob,
  info: SourceInfo,
  target: RawTarget,
  counted: CountedStream,
): Promise<Omit<ImportResult, 'labels'>> {
  const unwrapped = await unwrapCompression(counted.stream);
  let imageSize: number;
  let dataBytesWritten: number;
  let spilledBytes = 0;
  let format: ImageFormat = unwrapped.format;
  if (unwrapped.format === 'raw' || unwrapped.format === 'tar') {
    // A tar with content type kubevirt is imported as a raw disk, as CDI does.
    if (unwrapped.compressions.length === 0 && info.length !== undefined)
      target.checkFits(info.length);
    const written = await writeRawStream({ input: unwrapped.stream, target, signal: job.signal });
    imageSize = written.size;
    dataBytesWritten = written.dataBytes;
    const trailer =
      unwrapped.format === 'raw' ? await strippedTrailer(target, written.size) : undefined;
    if (trailer !== undefined) {
      // A fixed VHD: the footer is not part of the disk (qemu-img convert -f vpc -O raw).
      format = trailer.format;
      imageSize = trailer.virtualSize;
      dataBytesWritten = Math.max(0, dataBytesWritten - TRAILER_BYTES);
    }
  } else if (isConvertibleFormat(unwrapped.format)) {
    refuseByHead(unwrapped.format, unwrapped.head);
    const converted = await convertImageStream({
      job,
      format: unwrapped.format,
      input: unwrapped.stream,
      target,
    });
    imageSize = converted.virtualSize;
    dataBytesWritten = converted.dataBytesWritten;
    spilledBytes = converted.spilledBytes;
  } else {
    // Every sniffed format is handled above; this guards formats added to the sniffer later.
    unwrapped.stream.destroy();
    throw new CdiError(
      ErrorCodes.FormatUnsupported,
      `format ${String(unwrapped.format)} is not supported yet (supported: raw, ${CONVERTIBLE_FORMATS.join(', ')}, and gzip/xz/zstd/lz4/bzip2 wrappers)`,
    );
  }
  counted.tee?.verify();
  const finished = await target.finish(imageSize);
  counted.tracker.complete();
  return {
    format,
    compressions: unwrapped.compressions,
    size: finished.size,
    bytesTransferred: counted.counted(),
    dataBytesWritten,
    spilledBytes,
    preallocationApplied: finished.preallocationApplied,
    access: 'stream',
  };
}
