// SPDX-License-Identifier: Apache-2.0
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatReprDigest, parseReprDigest, sameChecksum } from './repr-digest.js';

const data = Buffer.from('hello');
const sha256 = createHash('sha256').update(data).digest();
const sha512 = createHash('sha512').update(data).digest();
const b64 = (b: Buffer): string => b.toString('base64');

describe('parseReprDigest', () => {
  it.each([
    { what: 'absent', value: undefined, want: undefined },
    {
      what: 'sha-256',
      value: `sha-256=:${b64(sha256)}:`,
      want: { algorithm: 'sha256', hex: sha256.toString('hex') },
    },
    {
      what: 'the strongest of several, unknown ones ignored',
      value: `md5=:AAAA:, sha-256=:${b64(sha256)}:, sha-512=:${b64(sha512)}:`,
      want: { algorithm: 'sha512', hex: sha512.toString('hex') },
    },
    {
      what: 'parameters after a member',
      value: `sha-256=:${b64(sha256)}:;foo=1`,
      want: { algorithm: 'sha256', hex: sha256.toString('hex') },
    },
  ])('$what', ({ value, want }) => {
    expect(parseReprDigest(value)).toEqual(want);
  });

  it.each([
    { what: 'not a byte sequence', value: 'sha-256=abc', error: /not a dictionary/ },
    { what: 'only weak algorithms', value: 'md5=:AAAA:', error: /no supported algorithm/ },
    {
      what: 'wrong length',
      value: `sha-256=:${b64(sha256.subarray(0, 16))}:`,
      error: /32 bytes, got 16/,
    },
  ])('refuses $what with a 400', ({ value, error }) => {
    let caught: unknown;
    try {
      parseReprDigest(value);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'CDI_CHECKSUM_INVALID', httpStatus: 400 });
    expect(String(caught)).toMatch(error);
  });
});

describe('formatReprDigest', () => {
  it('round-trips through the parser', () => {
    const c = { algorithm: 'sha256', hex: sha256.toString('hex') } as const;
    expect(formatReprDigest(c)).toBe(`sha-256=:${b64(sha256)}:`);
    const back = parseReprDigest(formatReprDigest(c));
    expect(back !== undefined && sameChecksum(back, c)).toBe(true);
  });

  it('refuses algorithms RFC 9530 deprecates', () => {
    expect(() => formatReprDigest({ algorithm: 'md5', hex: '0'.repeat(32) })).toThrow(
      /sha256 or sha512/,
    );
  });
});
