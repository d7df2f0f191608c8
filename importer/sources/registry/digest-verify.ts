// SPDX-License-Identifier: Apache-2.0
/**
 * A pass-through stage that hashes a blob as it flows and fails the stream when the bytes do
 * not match the descriptor's digest or size. When the size is known, the verdict is given before
 * the last byte goes downstream: a corrupted blob is then reported as a digest mismatch, not as
 * whatever error the decompressor or tar parser would raise on the damaged tail.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { CdiError, ErrorCodes } from '../../../common/errors.js';
import { handOver } from '../../../common/handed-over.js';

/** Network stages use undici's 64 KiB high-water mark (CONTRIBUTING.md). */
const NETWORK_HWM = 64 * 1024;

/** Options of {@link DigestVerifier}. */
export interface DigestVerifierOptions {
  /** `sha256:<hex>` or `sha512:<hex>`. */
  readonly digest: string;
  /** The descriptor size; more or fewer bytes are an error. */
  readonly size?: number | undefined;
  /**
   * Hand each chunk over (common/handed-over.ts) as it is forwarded: only when a decoder, which
   * frees its input once consumed, is the next and last holder.
   */
  readonly handOver?: boolean;
}

/** Hashes and forwards; errors with `CDI_REGISTRY_DIGEST_MISMATCH` or `CDI_UNEXPECTED_EOF`. */
export class DigestVerifier extends Transform {
  readonly #expected: string;
  readonly #algorithm: string;
  readonly #size: number | undefined;
  readonly #hash: Hash;
  readonly #handOver: boolean;
  #seen = 0;
  #verified = false;

  constructor(options: DigestVerifierOptions) {
    super({ highWaterMark: NETWORK_HWM });
    const colon = options.digest.indexOf(':');
    this.#algorithm = options.digest.slice(0, colon);
    if (colon < 0 || (this.#algorithm !== 'sha256' && this.#algorithm !== 'sha512')) {
      throw new CdiError(
        ErrorCodes.RegistryPullFailed,
        `unsupported digest algorithm in "${options.digest}"`,
      );
    }
    this.#expected = options.digest;
    this.#size = options.size;
    this.#hash = createHash(this.#algorithm);
    this.#handOver = options.handOver === true;
  }

  /** Bytes seen so far. */
  get bytesSeen(): number {
    return this.#seen;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    this.#hash.update(chunk);
    if (this.#handOver) handOver(chunk);
    if (this.#size !== undefined) {
      if (this.#seen > this.#size) {
        callback(
          new CdiError(
            ErrorCodes.RegistryDigestMismatch,
            `blob ${this.#expected} is longer than its descriptor size ${this.#size}`,
            { details: { expected: this.#expected, size: this.#size } },
          ),
        );
        return;
      }
      if (this.#seen === this.#size) {
        const err = this.#verify();
        if (err !== undefined) {
          callback(err);
          return;
        }
      }
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#size !== undefined && this.#seen < this.#size) {
      callback(
        new CdiError(
          ErrorCodes.UnexpectedEof,
          `blob ${this.#expected} ended after ${this.#seen} of ${this.#size} bytes`,
          { retryable: true, details: { expected: this.#size, actual: this.#seen } },
        ),
      );
      return;
    }
    callback(this.#verified ? null : (this.#verify() ?? null));
  }

  #verify(): CdiError | undefined {
    this.#verified = true;
    const actual = `${this.#algorithm}:${this.#hash.digest('hex')}`;
    if (actual === this.#expected) return undefined;
    return new CdiError(
      ErrorCodes.RegistryDigestMismatch,
      `blob digest mismatch: expected ${this.#expected}, calculated ${actual}`,
      { details: { expected: this.#expected, actual } },
    );
  }
}
