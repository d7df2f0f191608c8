// SPDX-License-Identifier: Apache-2.0
import { mkdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  convertQcow2File,
  createQcow2StreamConverter,
  type ConvertOptions,
  type Qcow2Info,
} from '../../native/index.js';
import { CdiError } from '../../common/errors.js';
import type { ProgressTracker } from '../progress/byte-counter.js';
import type { RawTarget } from '../sink/raw-target.js';
import type { ImportJob } from './import.js';

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

/** A local file: random access on both cores, only metadata and allocated clusters are read. */
export async function convertQcow2LocalFile(args: {
  readonly job: ImportJob;
  readonly path: string;
  readonly target: RawTarget;
  readonly tracker: ProgressTracker;
}): Promise<Qcow2Converted> {
  const { job, path, target, tracker } = args;
  let virtualSize = 0;
  const options = convertOptions(job, target, (i) => (virtualSize = i.virtualSize), tracker);
  const stats = await convertQcow2File(path, options);
  job.logger.info('converted qcow2 with random access', { ...stats });
  return { virtualSize, ...stats };
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
