// SPDX-License-Identifier: Apache-2.0
/**
 * A local file as a data source (the `cdi` CLI's PATH sources).
 *
 * Sequence of phases: `info()` stats the file (length, `localPath` so converters may seek it
 * directly), then `stream()` (a read stream with a 1 MiB highWaterMark) or `readRange()` calls
 * through one shared FileHandle, then `close()` (idempotent).
 */
import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';

import { CdiError, ErrorCodes, errorCode, errorMessage } from '../../common/errors.js';
import type { DataSource, SourceInfo } from './types.js';

/** Read size of the file stream: large reads, few syscalls (disk-side stage, CONTRIBUTING.md). */
export const FILE_STREAM_HIGH_WATER_MARK = 1 << 20;

/** Options of {@link FileSource}. */
export interface FileSourceOptions {
  readonly path: string;
}

function fileError(err: unknown, file: string): CdiError {
  const code = errorCode(err);
  const what =
    code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : errorMessage(err);
  return new CdiError(ErrorCodes.InvalidArgument, `cannot read source ${file}: ${what}`, {
    cause: err,
  });
}

/** See the module comment. */
export class FileSource implements DataSource {
  private readonly path: string;
  private handle: Promise<FileHandle> | undefined;
  private length: number | undefined;
  private closed = false;

  constructor(options: FileSourceOptions) {
    this.path = path.resolve(options.path);
  }

  async info(signal: AbortSignal): Promise<SourceInfo> {
    signal.throwIfAborted();
    const st = await stat(this.path).catch((err: unknown) => {
      throw fileError(err, this.path);
    });
    if (st.isDirectory())
      throw fileError(Object.assign(new Error('is a directory'), { code: 'EISDIR' }), this.path);
    // Block devices report size 0 through stat; their length is learnt by seeking (left to the reader).
    this.length = st.isFile() ? st.size : undefined;
    return {
      length: this.length,
      randomAccess: st.isFile(),
      displayName: this.path,
      localPath: this.path,
    };
  }

  stream(signal: AbortSignal): Promise<Readable> {
    if (this.closed)
      return Promise.reject(new CdiError(ErrorCodes.Internal, 'file source used after close()'));
    const s = createReadStream(this.path, { highWaterMark: FILE_STREAM_HIGH_WATER_MARK, signal });
    return new Promise<Readable>((resolve, reject) => {
      const onError = (err: Error): void => reject(fileError(err, this.path));
      s.once('error', onError);
      s.once('open', () => {
        s.off('error', onError);
        resolve(s);
      });
    });
  }

  async readRange(offset: number, length: number, signal: AbortSignal): Promise<Buffer> {
    signal.throwIfAborted();
    if (this.closed) throw new CdiError(ErrorCodes.Internal, 'file source used after close()');
    this.handle ??= open(this.path, 'r').catch((err: unknown) => {
      this.handle = undefined;
      throw fileError(err, this.path);
    });
    const fh = await this.handle;
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) {
        throw new CdiError(
          ErrorCodes.UnexpectedEof,
          `range ${offset}+${length} of ${this.path} is past the end (got ${done} bytes)`,
        );
      }
      done += bytesRead;
    }
    return buf;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const h = this.handle;
    this.handle = undefined;
    if (h !== undefined) await (await h.catch(() => undefined))?.close();
  }
}
