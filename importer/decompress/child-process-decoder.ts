// SPDX-License-Identifier: Apache-2.0
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Duplex } from 'node:stream';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { freeHandedOver } from '../../common/handed-over.js';
import { BlockCoalescer } from './block-coalescer.js';

/** How much of the tool's stderr is kept for the error message. */
const STDERR_KEEP_BYTES = 2048;

/** Options of {@link ChildProcessDecoder}. */
export interface ChildProcessDecoderOptions {
  /** Executable, e.g. `lz4`. */
  readonly command: string;
  readonly args: readonly string[];
  /** Format name for messages, e.g. `lz4`. */
  readonly format: string;
}

/**
 * A Duplex that pipes compressed bytes through a decompression tool (`lz4 -dc`, `bzip2 -dc`). The
 * tools are several times faster than JavaScript or WebAssembly decoders (ADR 0002).
 *
 * Backpressure both ways: a write is acknowledged only once the tool's stdin accepted it, and the
 * tool's stdout is paused whenever our readable side is full. The readable side ends only after the
 * tool exited 0, so truncated or corrupt input surfaces as `CDI_DECOMPRESS_FAILED`.
 */
export class ChildProcessDecoder extends Duplex {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #format: string;
  readonly #coalescer = new BlockCoalescer((block) => this.push(block));
  #stderr = '';
  #stdoutEnded = false;
  #exitCode: number | null | undefined;

  constructor(options: ChildProcessDecoderOptions) {
    super({ readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 });
    this.#format = options.format;
    this.#child = spawn(options.command, [...options.args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const child = this.#child;
    child.on('error', (err) => {
      this.destroy(
        new CdiError(
          ErrorCodes.DecompressFailed,
          `cannot run ${options.command} to decompress ${this.#format}: ${err.message}`,
          {
            cause: err,
          },
        ),
      );
    });
    child.stdout.on('data', (chunk: Buffer) => {
      if (!this.#coalescer.add(chunk)) child.stdout.pause();
    });
    child.stdout.on('end', () => {
      this.#stdoutEnded = true;
      this.#maybeEnd();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (this.#stderr.length < STDERR_KEEP_BYTES) this.#stderr += chunk.toString('utf8');
    });
    // EPIPE on stdin means the tool quit early; its exit status carries the real reason.
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => {
      this.#exitCode = code;
      this.#maybeEnd();
    });
  }

  #maybeEnd(): void {
    if (!this.#stdoutEnded || this.#exitCode === undefined || this.destroyed) return;
    if (this.#exitCode === 0) {
      this.#coalescer.flush();
      this.push(null);
      return;
    }
    const detail = this.#stderr.trim().split('\n').pop() ?? '';
    this.destroy(
      new CdiError(
        ErrorCodes.DecompressFailed,
        `${this.#format} stream is corrupt or truncated${detail === '' ? '' : `: ${detail}`}`,
      ),
    );
  }

  override _read(): void {
    this.#child.stdout.resume();
  }

  override _write(
    chunk: Buffer,
    _enc: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    // Once the pipe took it, a handed-over download chunk is freed (common/handed-over.ts).
    const written = (): void => freeHandedOver(chunk);
    if (this.#child.stdin.write(chunk, written)) callback();
    else this.#child.stdin.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#child.stdin.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#exitCode === undefined) this.#child.kill('SIGKILL');
    callback(err);
  }
}
