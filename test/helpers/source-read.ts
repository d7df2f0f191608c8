// SPDX-License-Identifier: Apache-2.0
/** Reads a data source the way the importer does, for tests that compare what came through. */
import type { DataSource } from '../../importer/sources/types.js';

/** Every chunk of `r`, concatenated. */
export async function consume(r: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The whole disk through info() and stream(). */
export async function download(src: DataSource): Promise<Buffer> {
  const signal = new AbortController().signal;
  await src.info(signal);
  return consume(await src.stream(signal));
}
