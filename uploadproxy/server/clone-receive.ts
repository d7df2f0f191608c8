// SPDX-License-Identifier: Apache-2.0
/**
 * The target side of a network clone: a clone source pod POSTs its claim as an extent stream
 * (importer/clone/extent-stream.ts) to {@link CLONE_UPLOAD_PATH}; this writes each data piece at
 * its offset into the raw target and leaves the rest as holes: a new file is sized first (its
 * holes read as zeros), a block device has the gaps zeroed (BLKZEROOUT/fallocate), since it may
 * hold old data. The target's life cycle is the importer's (`RawTarget`: size check, resize to the
 * claim, preallocation, fsync, publish; removed or wiped on failure). Raw stays raw: a clone copies
 * a disk, whatever its first bytes look like.
 */
import type { Readable } from 'node:stream';
import { CdiError, ErrorCodes, errorMessage, toWriteError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { ExtentDecoder, type ExtentSink } from '../../importer/clone/extent-stream.js';
import type { ImportResult, ImportTarget } from '../../importer/pipeline/import.js';
import { writeAt, zeroRange } from '../../native/index.js';
import { RawTarget } from '../../importer/sink/raw-target.js';

export { CLONE_UPLOAD_PATH } from '../../common/contract.js';

/** Options of {@link receiveClone}. */
export interface CloneReceiveOptions {
  readonly body: Readable;
  readonly target: ImportTarget;
  readonly requestedSize?: number;
  readonly filesystemOverhead: number;
  readonly preallocation: boolean;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** Called as image bytes are accounted for (data written or hole skipped). */
  readonly onPosition?: (position: number, size: number) => void;
}

function streamProblem(message: string): CdiError {
  return new CdiError(ErrorCodes.CloneStreamInvalid, message, { httpStatus: 400 });
}

class TargetSink implements ExtentSink {
  #target: RawTarget | undefined;

  constructor(private readonly options: CloneReceiveOptions) {}

  get target(): RawTarget | undefined {
    return this.#target;
  }

  async begin(size: number): Promise<void> {
    const { target, logger } = this.options;
    if (target.kind === 'dir')
      throw streamProblem('a clone stream carries a disk image, not an archive');
    this.#target = await RawTarget.open({
      path: target.path,
      kind: target.kind,
      ...(this.options.requestedSize === undefined
        ? {}
        : { requestedSize: this.options.requestedSize }),
      overhead: this.options.filesystemOverhead,
      preallocation: this.options.preallocation,
      logger,
    });
    await this.#target.prepare(size);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    const t = this.#opened();
    try {
      // Natively, and past the page cache where the target allows it (ADR 0034).
      await writeAt(t.fd, t.directFd ?? -1, [data], offset);
    } catch (err) {
      throw toWriteError(err, t.options.path);
    }
  }

  async hole(offset: number, length: number): Promise<void> {
    const t = this.#opened();
    // A fresh file was truncated to size: its holes already read as zeros.
    if (t.kind === 'block') await zeroRange(t.fd, offset, length);
  }

  #opened(): RawTarget {
    if (this.#target === undefined) throw streamProblem('clone stream data before its header');
    return this.#target;
  }
}

/** Receives one clone stream into the target; see the module comment. */
export async function receiveClone(options: CloneReceiveOptions): Promise<ImportResult> {
  const sink = new TargetSink(options);
  const decoder = new ExtentDecoder(sink);
  try {
    // Not destroyed on an early exit: the server still answers why on this request.
    for await (const chunk of options.body.iterator({ destroyOnReturn: false })) {
      options.signal.throwIfAborted();
      await decoder.push(chunk as Buffer);
      options.onPosition?.(decoder.position, decoder.size);
    }
    const { size, dataBytes } = decoder.finish();
    const target = sink.target;
    if (target === undefined) throw streamProblem('clone stream without header');
    const finished = await target.finish(size);
    return {
      format: 'raw',
      compressions: [],
      size: finished.size,
      bytesTransferred: dataBytes,
      dataBytesWritten: dataBytes,
      spilledBytes: 0,
      preallocationApplied: finished.preallocationApplied,
      access: 'stream',
      labels: {},
    };
  } catch (err) {
    options.logger.warn('clone stream failed', { error: errorMessage(err) });
    await sink.target?.abort();
    throw err;
  }
}
