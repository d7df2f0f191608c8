// SPDX-License-Identifier: Apache-2.0
/**
 * The source claim of a host-assisted clone, mounted read-only in the importer pod: its
 * `disk.img` (filesystem) or its block device. A {@link FileSource} that also knows the length of
 * a block device (stat reports 0 for one), so progress and the size check work for both modes,
 * and that offers no `localPath`: a clone copies bytes, it never converts them.
 *
 * Sequence of phases: `info()` (length, never random access), then `stream()` once, then
 * `close()` (idempotent).
 */
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { blockTargetSize } from '../sink/space.js';
import { FileSource } from './file.js';
import type { DataSource, SourceInfo } from './types.js';

/** Options of {@link PvcSource}. */
export interface PvcSourceOptions {
  /** The image in the pod: `/source/disk.img` or `/dev/cdi-clone-source`. */
  readonly path: string;
}

/** See the module comment. */
export class PvcSource implements DataSource {
  readonly #file: FileSource;
  readonly #path: string;

  constructor(options: PvcSourceOptions) {
    this.#path = options.path;
    this.#file = new FileSource({ path: options.path });
  }

  async info(signal: AbortSignal): Promise<SourceInfo> {
    const info = await this.#file.info(signal);
    const st = await stat(this.#path);
    const length = st.isBlockDevice() ? await blockTargetSize(this.#path) : info.length;
    return { length, randomAccess: false, displayName: `pvc ${info.displayName}` };
  }

  stream(signal: AbortSignal): Promise<Readable> {
    return this.#file.stream(signal);
  }

  close(): Promise<void> {
    return this.#file.close();
  }
}
