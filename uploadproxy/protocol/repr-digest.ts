// SPDX-License-Identifier: Apache-2.0
/**
 * Upload checksums (beyond the Go CDI, whose uploads cannot be verified: CDI #1520, #4104) in the
 * standard form, RFC 9530's `Repr-Digest` request header: `Repr-Digest: sha-256=:BASE64:`. The
 * digest covers the whole uploaded file (the representation), so a resumed upload sends the same
 * header with each part. The upload server verifies it before the disk is published; a mismatch is
 * a 400 and nothing is kept. `cdi upload --checksum sha256:HEX` takes CDI's own syntax.
 */
import { CdiError, ErrorCodes } from '../../common/errors.js';
import type { ExpectedChecksum } from '../../importer/checksum/checksum.js';

/** The header (lower case, as Node gives request headers). */
export const REPR_DIGEST_HEADER = 'repr-digest';

/** RFC 9530 algorithm keys we verify, and CDI's names for them (secure ones only). */
const ALGORITHMS = { 'sha-256': 'sha256', 'sha-512': 'sha512' } as const;
type DigestKey = keyof typeof ALGORITHMS;

function invalid(message: string): CdiError {
  return new CdiError(ErrorCodes.ChecksumInvalid, message, { httpStatus: 400 });
}

/**
 * Parses a `Repr-Digest` value (a Structured Fields dictionary of byte sequences, RFC 8941):
 * the strongest algorithm we know is used, others are ignored; undefined when the header is
 * absent. Throws `CDI_CHECKSUM_INVALID` (400) for a malformed value or no usable algorithm.
 */
export function parseReprDigest(value: string | undefined): ExpectedChecksum | undefined {
  if (value === undefined) return undefined;
  const found = new Map<DigestKey, string>();
  for (const member of value.split(',')) {
    const m = /^\s*([a-z][a-z0-9_\-.*]*)\s*=\s*:([A-Za-z0-9+/]*={0,2}):\s*(?:;.*)?$/.exec(member);
    if (m?.[1] === undefined || m[2] === undefined)
      throw invalid(`Repr-Digest ${JSON.stringify(value)} is not a dictionary of byte sequences`);
    if (m[1] in ALGORITHMS) found.set(m[1] as DigestKey, m[2]);
  }
  const key: DigestKey | undefined = found.has('sha-512')
    ? 'sha-512'
    : found.has('sha-256')
      ? 'sha-256'
      : undefined;
  if (key === undefined)
    throw invalid(
      `Repr-Digest ${JSON.stringify(value)} names no supported algorithm (sha-256, sha-512)`,
    );
  const algorithm = ALGORITHMS[key];
  const hex = Buffer.from(found.get(key) ?? '', 'base64').toString('hex');
  const wantBytes = algorithm === 'sha256' ? 32 : 64;
  if (hex.length !== wantBytes * 2)
    throw invalid(`Repr-Digest ${key} must hold ${wantBytes} bytes, got ${hex.length / 2}`);
  return { algorithm, hex };
}

/** The `Repr-Digest` value of a checksum (sha256 and sha512 only: RFC 9530 deprecates the rest). */
export function formatReprDigest(checksum: ExpectedChecksum): string {
  const key = (Object.keys(ALGORITHMS) as DigestKey[]).find(
    (k) => ALGORITHMS[k] === checksum.algorithm,
  );
  if (key === undefined)
    throw new CdiError(
      ErrorCodes.ChecksumInvalid,
      `upload checksums take sha256 or sha512, not ${checksum.algorithm}`,
    );
  return `${key}=:${Buffer.from(checksum.hex, 'hex').toString('base64')}:`;
}

/** True when two checksums are the same algorithm and digest. */
export function sameChecksum(a: ExpectedChecksum, b: ExpectedChecksum): boolean {
  return a.algorithm === b.algorithm && a.hex === b.hex;
}
