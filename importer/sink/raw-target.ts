// SPDX-License-Identifier: Apache-2.0
import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { chmod, mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { toWriteError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { blockTargetSize, freeSpace, sizeExceededError, usableSpace } from './space.js';

const execFileAsync = promisify(execFile);
/** Bytes wiped at the start of a block device when an import fails, so no stale header remains. */
const WIPE_BYTES = 1 << 20;
/** CDI leaves disk.img readable and writable by the qemu group (0660). */
const DISK_IMAGE_MODE = 0o660;

/** Where the raw image goes. */
export interface RawTargetOptions {
  readonly path: string;
  readonly kind: 'file' | 'block';
  /** The claim size; the file image is grown to the usable space when given. */
  readonly requestedSize?: number;
  /** FILESYSTEM_OVERHEAD (ignored for block targets). */
  readonly overhead: number;
  readonly preallocation: boolean;
  readonly logger: Logger;
}

/** What {@link RawTarget.finish} reports. */
export interface FinishedTarget {
  readonly size: number;
  readonly preallocationApplied: boolean;
}

/**
 * The raw image target's life cycle: open, size checks, finish (resize, preallocate, fsync,
 * publish) or abort. A file target is written as `<path>.part` and renamed into place only after
 * fsync, so a failed import never leaves a half-written `disk.img` that looks good; a failed block
 * import has its first MiB zeroed so no stale header survives.
 */
export class RawTarget {
  readonly options: RawTargetOptions;
  /** Bytes the image may occupy. */
  readonly usable: number;
  readonly #handle: FileHandle;
  /** The same target opened with O_DIRECT, when the file system or device allows it. */
  readonly #direct: FileHandle | undefined;
  readonly #writePath: string;
  #closed = false;

  private constructor(
    options: RawTargetOptions,
    handle: FileHandle,
    direct: FileHandle | undefined,
    writePath: string,
    usable: number,
  ) {
    this.options = options;
    this.#handle = handle;
    this.#direct = direct;
    this.#writePath = writePath;
    this.usable = usable;
  }

  /** Opens the target and computes the usable space (no data written yet). */
  static async open(options: RawTargetOptions): Promise<RawTarget> {
    if (options.kind === 'block') {
      const size = await blockTargetSize(options.path);
      const handle = await open(options.path, fsConstants.O_RDWR).catch((err: unknown) => {
        throw toWriteError(err, options.path);
      });
      return new RawTarget(options, handle, await openDirect(options.path), options.path, size);
    }
    const dir = dirname(options.path);
    await mkdir(dir, { recursive: true });
    const available = await freeSpace(dir);
    const usable = usableSpace({
      requested: options.requestedSize,
      available,
      overhead: options.overhead,
    });
    const writePath = `${options.path}.part`;
    await rm(writePath, { force: true });
    const handle = await open(writePath, 'w+', DISK_IMAGE_MODE).catch((err: unknown) => {
      throw toWriteError(err, writePath);
    });
    return new RawTarget(options, handle, await openDirect(writePath), writePath, usable);
  }

  /** The open file descriptor the writers use. */
  get fd(): number {
    return this.#handle.fd;
  }

  /**
   * The target opened again with O_DIRECT (undefined where that is refused, as on tmpfs): the
   * native converters write aligned blocks through it, past the page cache (ADR 0034).
   */
  get directFd(): number | undefined {
    return this.#direct?.fd;
  }

  get kind(): 'file' | 'block' {
    return this.options.kind;
  }

  /** Fails with CDI_SIZE_VALIDATION when an image of `virtualSize` cannot fit. */
  checkFits(virtualSize: number): void {
    if (virtualSize > this.usable) throw sizeExceededError(virtualSize, this.usable);
  }

  /** Size check, then sizes a file target so unwritten ranges read as zeros. */
  async prepare(virtualSize: number): Promise<void> {
    this.checkFits(virtualSize);
    if (this.kind === 'file') await this.#handle.truncate(virtualSize);
  }

  /**
   * Completes the image of `imageSize` bytes: grows a file to the usable space when a claim size
   * was given (never shrinks), preallocates when asked, fsyncs, and publishes the file.
   */
  async finish(imageSize: number): Promise<FinishedTarget> {
    this.checkFits(imageSize);
    const { logger } = this.options;
    let size = imageSize;
    let preallocationApplied = false;
    try {
      if (this.kind === 'file') {
        if (this.options.requestedSize !== undefined) size = Math.max(imageSize, this.usable);
        await this.#handle.truncate(size);
        if (this.options.preallocation && size > 0) {
          await execFileAsync('fallocate', ['-l', String(size), this.#writePath]);
          preallocationApplied = true;
        }
      } else {
        // Zero runs were written explicitly, so the whole device is allocated already.
        preallocationApplied = this.options.preallocation;
      }
      await this.#handle.sync();
      logger.info(`Successfully completed fsync(${this.options.path}) syscall, committed to disk`);
      await this.#close();
      if (this.kind === 'file') {
        await chmod(this.#writePath, DISK_IMAGE_MODE);
        await rename(this.#writePath, this.options.path);
      }
    } catch (err) {
      throw toWriteError(err, this.options.path);
    }
    return { size, preallocationApplied };
  }

  /** Removes what was written (file) or wipes the header (block). Never throws. */
  async abort(): Promise<void> {
    try {
      if (this.kind === 'block' && !this.#closed) {
        await this.#handle.write(Buffer.alloc(WIPE_BYTES), 0, WIPE_BYTES, 0).catch(() => undefined);
      }
      await this.#close();
      if (this.kind === 'file') await rm(this.#writePath, { force: true });
    } catch (err) {
      this.options.logger.warn('cleaning up a failed target failed', { error: String(err) });
    }
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#direct?.close();
    await this.#handle.close();
  }
}

/** Opens `path` for direct writes, or undefined when its file system or device refuses. */
async function openDirect(path: string): Promise<FileHandle | undefined> {
  return open(path, fsConstants.O_RDWR | fsConstants.O_DIRECT).catch(() => undefined);
}
