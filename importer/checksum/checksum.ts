// SPDX-License-Identifier: Apache-2.0
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { CdiError, ChecksumMismatchError, ErrorCodes } from '../../common/errors.js';

/** Digest lengths in hex characters, per algorithm CDI accepts (`pkg/util/checksum`). */
const HEX_LENGTHS = { md5: 32, sha1: 40, sha256: 64, sha512: 128 } as const;
export type ChecksumAlgorithm = keyof typeof HEX_LENGTHS;

/** A parsed `algorithm:hex` checksum. */
export interface ExpectedChecksum {
  readonly algorithm: ChecksumAlgorithm;
  readonly hex: string;
}

/**
 * Parses CDI's checksum syntax: `algorithm:hexhash`, split at the first `:`, trimmed,
 * case-insensitive. Throws `CDI_CHECKSUM_INVALID` naming what is wrong.
 */
export function parseChecksum(spec: string): ExpectedChecksum {
  const colon = spec.indexOf(':');
  if (colon < 0) {
    throw new CdiError(
      ErrorCodes.ChecksumInvalid,
      `Invalid checksum format: ${spec}: expected algorithm:hex`,
    );
  }
  const algorithm = spec.slice(0, colon).trim().toLowerCase();
  const hex = spec
    .slice(colon + 1)
    .trim()
    .toLowerCase();
  if (!(algorithm in HEX_LENGTHS)) {
    throw new CdiError(
      ErrorCodes.ChecksumInvalid,
      `Invalid checksum format: ${spec}: unsupported algorithm ${JSON.stringify(algorithm)} (md5, sha1, sha256, sha512)`,
    );
  }
  const alg = algorithm as ChecksumAlgorithm;
  if (hex.length !== HEX_LENGTHS[alg] || !/^[0-9a-f]+$/.test(hex)) {
    throw new CdiError(
      ErrorCodes.ChecksumInvalid,
      `Invalid checksum format: ${spec}: ${alg} needs ${HEX_LENGTHS[alg]} hex digits`,
    );
  }
  return { algorithm: alg, hex };
}

/**
 * A pass-through that hashes the bytes as transferred (below decompression, as CDI's tee does).
 * {@link ChecksumTee.verify} is called once the whole transfer has been consumed.
 */
export class ChecksumTee extends Transform {
  readonly #expected: ExpectedChecksum;
  readonly #hash: Hash;

  constructor(expected: ExpectedChecksum) {
    super({ highWaterMark: 1 << 20 });
    this.#expected = expected;
    this.#hash = createHash(expected.algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  /** Throws {@link ChecksumMismatchError} when the digest differs. Call after the end. */
  verify(): void {
    const actual = this.#hash.digest('hex');
    if (actual !== this.#expected.hex) {
      throw new ChecksumMismatchError(this.#expected.algorithm, this.#expected.hex, actual);
    }
  }
}
