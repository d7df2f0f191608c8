// SPDX-License-Identifier: Apache-2.0
/**
 * Conversion of every supported disk image format (qcow2, VDI, VHD, VHDX, VMDK) for the import
 * pipeline, through the native converter's format-generic entry points: random access for a
 * local file, streaming otherwise. (It replaces the qcow2-only `qcow2.ts`.)
 */
import { mkdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  convertImageFile,
  createImageStreamConverter,
  type ConvertibleFormat,
  type ImageConvertOptions,
} from '../../native/index.js';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { isVmdkDescriptor, vmdkDescriptorExtents } from '../format/vhd-footer.js';
import type { ProgressTracker } from '../progress/byte-counter.js';
import type { RawTarget } from '../sink/raw-target.js';
import type { ImportJob } from './import.js';

/** What a conversion reports to the pipeline. */
export interface ImageConverted {
  readonly virtualSize: number;
  readonly bytesRead: number;
  readonly dataBytesWritten: number;
  readonly spilledBytes: number;
}

/**
 * Refuses a VMDK text descriptor (monolithicFlat, twoGbMaxExtent*): its data lives in extent
 * files next to it, which an import never opens (like qcow2 backing files).
 */
export function refuseVmdkDescriptor(head: Buffer): void {
  if (!isVmdkDescriptor(head)) return;
  const extents = vmdkDescriptorExtents(head);
  throw new CdiError(
    ErrorCodes.ImageExternalData,
    `vmdk descriptor file keeps its data in extent files${extents.length > 0 ? ` (${extents.join('; ')})` : ''}; ` +
      'extent files are never opened: import a monolithicSparse or streamOptimized vmdk instead',
  );
}

function convertOptions(
  job: ImportJob,
  target: RawTarget,
  onSize: (virtualSize: number) => void,
  tracker?: ProgressTracker,
): ImageConvertOptions {
  return {
    target: { fd: target.fd, kind: target.kind },
    signal: job.signal,
    ...(tracker === undefined
      ? {}
      : { onProgress: (done: number, total: number) => tracker.set(done, total) }),
    prepareTarget: async (info) => {
      if (info.refusal !== undefined) {
        throw new CdiError(info.refusal.code as CdiError['code'], info.refusal.message);
      }
      onSize(info.virtualSize);
      await target.prepare(info.virtualSize);
    },
  };
}

/** A local file: random access on both cores; only metadata and allocated blocks are read. */
export async function convertImageLocalFile(args: {
  readonly job: ImportJob;
  readonly format: ConvertibleFormat;
  readonly path: string;
  readonly target: RawTarget;
  readonly tracker: ProgressTracker;
}): Promise<ImageConverted> {
  const { job, format, path, target, tracker } = args;
  let virtualSize = 0;
  const options = convertOptions(job, target, (s) => (virtualSize = s), tracker);
  const stats = await convertImageFile(format, path, options);
  job.logger.info(`converted ${format} with random access`, { ...stats });
  return { virtualSize, ...stats };
}

/** Sequential input: converts while streaming, spilling only what arrives before its map. */
export async function convertImageStream(args: {
  readonly job: ImportJob;
  readonly format: ConvertibleFormat;
  readonly input: Readable;
  readonly target: RawTarget;
}): Promise<ImageConverted> {
  const { job, format, input, target } = args;
  let virtualSize = 0;
  await mkdir(job.spillDir, { recursive: true });
  const converter = createImageStreamConverter(format, {
    ...convertOptions(job, target, (s) => (virtualSize = s)),
    spillDir: job.spillDir,
  });
  await pipeline(input, converter, { signal: job.signal });
  const stats = await converter.result;
  job.logger.info(`converted ${format} while streaming`, { ...stats });
  return { virtualSize, ...stats };
}
