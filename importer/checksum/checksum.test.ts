// SPDX-License-Identifier: Apache-2.0
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { ChecksumTee, parseChecksum } from './checksum.js';

const MD5_EMPTY = 'd41d8cd98f00b204e9800998ecf8427e';

describe('parseChecksum', () => {
  it.each([
    { what: 'md5', spec: `md5:${MD5_EMPTY}`, algorithm: 'md5' },
    { what: 'upper case and spaces', spec: ` SHA1 : ${'A'.repeat(40)} `, algorithm: 'sha1' },
    { what: 'sha256', spec: `sha256:${'0'.repeat(64)}`, algorithm: 'sha256' },
    { what: 'sha512', spec: `sha512:${'f'.repeat(128)}`, algorithm: 'sha512' },
  ])('accepts $what', ({ spec, algorithm }) => {
    expect(parseChecksum(spec).algorithm).toBe(algorithm);
  });

  it.each([
    { what: 'no colon', spec: MD5_EMPTY, message: /expected algorithm:hex/ },
    { what: 'unknown algorithm', spec: `crc32:${'0'.repeat(8)}`, message: /unsupported algorithm/ },
    { what: 'wrong length', spec: `sha256:${'0'.repeat(63)}`, message: /needs 64 hex digits/ },
    { what: 'not hex', spec: `md5:${'z'.repeat(32)}`, message: /needs 32 hex digits/ },
  ])('rejects $what', ({ spec, message }) => {
    expect(() => parseChecksum(spec)).toThrow(message);
    try {
      parseChecksum(spec);
    } catch (err) {
      expect((err as { code: string }).code).toBe('CDI_CHECKSUM_INVALID');
    }
  });
});

describe('ChecksumTee', () => {
  const data = Buffer.from('the bytes as transferred');
  const sha256 = createHash('sha256').update(data).digest('hex');

  async function run(spec: string): Promise<ChecksumTee> {
    const tee = new ChecksumTee(parseChecksum(spec));
    const chunks: Buffer[] = [];
    await pipeline(
      Readable.from([data.subarray(0, 5), data.subarray(5)]),
      tee,
      new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }),
    );
    expect(Buffer.concat(chunks)).toEqual(data);
    return tee;
  }

  it('passes bytes through and verifies a matching digest', async () => {
    const tee = await run(`sha256:${sha256}`);
    expect(() => tee.verify()).not.toThrow();
  });

  it('reports expected and calculated digests on a mismatch', async () => {
    const tee = await run(`sha256:${'0'.repeat(64)}`);
    expect(() => tee.verify()).toThrow(
      `checksum mismatch: expected sha256:${'0'.repeat(64)}, calculated sha256:${sha256}`,
    );
  });
});
