// SPDX-License-Identifier: Apache-2.0
/**
 * Conversion of a random-access input by reading it in order through a stream converter. A
 * streamOptimized VMDK takes this path everywhere (local files and HTTP/S3 ranges too): its
 * grains are placed by their markers and checked against its tables at the end
 * (vmdk-grain-check.ts), and only one path for it means one verdict for it. Reading in order
 * costs nothing extra: every grain of such an image is read anyway.
 */
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import type { ConvertStats, RangeReader } from './types.js';
import type { StreamConverterBase } from './stream-base.js';

/** Bytes per read: one stream converter window. */
const READ_BYTES = 4 * 1024 * 1024;

/** Where conversions without a spill directory of their own keep the little metadata they spill. */
export const DEFAULT_SPILL_DIR = tmpdir();

async function* inOrder(source: RangeReader, signal?: AbortSignal): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < source.size; offset += READ_BYTES) {
    yield await source.read(offset, Math.min(READ_BYTES, source.size - offset), signal);
  }
}

/** Feeds `source` from its first byte to its last into `sink`; resolves with its result. */
export async function convertInOrder(
  sink: StreamConverterBase,
  source: RangeReader,
  signal?: AbortSignal,
): Promise<ConvertStats> {
  try {
    await pipeline(Readable.from(inOrder(source, signal)), sink);
  } catch (err) {
    // The converter's own refusal says more than the broken pipe it caused.
    const own = await sink.result.then(
      () => undefined,
      (e: unknown) => e,
    );
    throw own ?? err;
  }
  return sink.result;
}
