// SPDX-License-Identifier: Apache-2.0
/**
 * Conversion of every format of the native format table (qcow2, VDI, VHD, VHDX, VMDK) for the
 * import pipeline: random access for a local file, streaming otherwise.
 */
import { mkdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  convertImageFile,
  createImageStreamConverter,
  IMAGE_FORMATS,
  type ConvertibleFormat,
  type ImageConvertOptions,
} from '../../native/index.js';
import { CdiError } from '../../common/errors.js';
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
 * Refuses what the format table refuses at sight: a VMDK text descriptor (monolithicFlat,
 * twoGbMaxExtent*) keeps its data in extent files next to it, which an import never opens (like
 * qcow2 backing files).
 */
export function refuseByHead(format: ConvertibleFormat, head: Buffer): void {
  const refusal = IMAGE_FORMATS[format].refuseHead(head);
  if (refusal !== undefined) throw new CdiError(refusal.code, refusal.message);
}

function convertOptions(
  job: ImportJob,
  target: RawTarget,
  onSize: (virtualSize: number) => void,
  tracker?: ProgressTracker,
): ImageConvertOptions {
  return {
    target: {
      fd: target.fd,
      kind: target.kind,
      ...(target.directFd === undefined ? {} : { directFd: target.directFd }),
    },
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
  // A streamOptimized VMDK converts in order and spills its metadata here.
  await mkdir(job.spillDir, { recursive: true });
  const stats = await convertImageFile(format, path, { ...options, spillDir: job.spillDir });
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
