// SPDX-License-Identifier: Apache-2.0
import { mkdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  convertQcow2File,
  convertQcow2Ranged,
  createQcow2StreamConverter,
  type ConvertOptions,
  type Qcow2Info,
  type RangeReader,
} from '../../native/index.js';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import type { ProgressTracker } from '../progress/byte-counter.js';
import type { RawTarget } from '../sink/raw-target.js';
import type { SourceInfo } from '../sources/types.js';
import type { ImportJob } from './import.js';

/** Parallel range requests for a remote qcow2: enough to hide latency on 2 cores. */
const RANGED_CONCURRENCY = 4;

/** What a conversion reports to the pipeline. */
export interface Qcow2Converted {
  readonly virtualSize: number;
  readonly bytesRead: number;
  readonly dataBytesWritten: number;
  readonly spilledBytes: number;
}

/** Builds the converter options shared by all three input kinds. */
function convertOptions(
  job: ImportJob,
  target: RawTarget,
  onInfo: (info: Qcow2Info) => void,
  tracker?: ProgressTracker,
): ConvertOptions {
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
      onInfo(info);
      await target.prepare(info.virtualSize);
    },
  };
}

/** Random access: a local file, or HTTP/S3 ranges (only metadata and allocated clusters are read). */
export async function convertQcow2RandomAccess(args: {
  readonly job: ImportJob;
  readonly info: SourceInfo;
  readonly target: RawTarget;
  readonly tracker: ProgressTracker;
}): Promise<Qcow2Converted> {
  const { job, info, target, tracker } = args;
  let virtualSize = 0;
  const options = convertOptions(job, target, (i) => (virtualSize = i.virtualSize), tracker);
  const readRange = job.source.readRange?.bind(job.source);
  if (readRange === undefined || info.length === undefined) {
    throw new CdiError(
      ErrorCodes.Internal,
      'random-access conversion needs a source with ranges and a length',
    );
  }
  const stats =
    info.localPath !== undefined
      ? await convertQcow2File(info.localPath, options)
      : await convertQcow2Ranged(rangeReader(info.length, readRange, job.signal), {
          ...options,
          concurrency: RANGED_CONCURRENCY,
        });
  job.logger.info('converted qcow2 with random access', { ...stats });
  return { virtualSize, ...stats };
}

function rangeReader(
  size: number,
  readRange: (offset: number, length: number, signal: AbortSignal) => Promise<Buffer>,
  jobSignal: AbortSignal,
): RangeReader {
  return { size, read: (offset, length, signal) => readRange(offset, length, signal ?? jobSignal) };
}

/** Sequential input: convert while streaming, spilling only clusters that arrive before their L2. */
export async function convertQcow2Stream(args: {
  readonly job: ImportJob;
  readonly input: Readable;
  readonly target: RawTarget;
}): Promise<Qcow2Converted> {
  const { job, input, target } = args;
  let virtualSize = 0;
  await mkdir(job.spillDir, { recursive: true });
  const converter = createQcow2StreamConverter({
    ...convertOptions(job, target, (i) => (virtualSize = i.virtualSize)),
    spillDir: job.spillDir,
  });
  await pipeline(input, converter, { signal: job.signal });
  const stats = await converter.result;
  job.logger.info('converted qcow2 while streaming', { ...stats });
  return { virtualSize, ...stats };
}
