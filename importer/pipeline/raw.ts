// SPDX-License-Identifier: Apache-2.0
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { zeroRange } from '../../native/index.js';
import type { RawTarget } from '../sink/raw-target.js';
import { SparseWriter } from '../sink/sparse-writer.js';

/** How a raw write zeroes a run of a block device; the clone receiver zeroes holes the same way. */
export { zeroRange };

/** Options of {@link writeRawStream}. */
export interface RawWriteOptions {
  readonly input: Readable;
  readonly target: RawTarget;
  readonly signal: AbortSignal;
}

/**
 * Streams a raw image into the target, sparsely, refusing to grow past the usable space. This is
 * the transfer's one awaited `pipeline()`; earlier stages are linked to `input`.
 */
export async function writeRawStream(
  options: RawWriteOptions,
): Promise<{ size: number; dataBytes: number }> {
  const { target } = options;
  const writer = new SparseWriter({
    fd: target.fd,
    targetName: target.options.path,
    kind: target.kind,
    limit: target.usable,
    zeroRange,
  });
  await pipeline(options.input, writer, { signal: options.signal });
  return { size: writer.position, dataBytes: writer.dataBytes };
}
