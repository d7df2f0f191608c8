// SPDX-License-Identifier: Apache-2.0
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { DigestVerifier } from './digest-verify.js';

/** The `code` of what `fn` throws (undefined when it does not throw). */
function thrownCode(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return undefined;
}

const data = Buffer.from('the quick brown fox jumps over the lazy dog'.repeat(1000));
const sha256 = `sha256:${createHash('sha256').update(data).digest('hex')}`;
const sha512 = `sha512:${createHash('sha512').update(data).digest('hex')}`;

/** Runs bytes through a verifier in small chunks; returns what came out. */
async function through(
  bytes: Buffer,
  digest: string,
  size: number | undefined,
): Promise<{ out: Buffer; error: unknown }> {
  const out: Buffer[] = [];
  const chunks = Array.from({ length: Math.ceil(bytes.length / 997) }, (_, i) =>
    bytes.subarray(i * 997, (i + 1) * 997),
  );
  try {
    await pipeline(
      Readable.from(chunks),
      new DigestVerifier({ digest, size }),
      new Writable({
        write(c: Buffer, _e, cb) {
          out.push(c);
          cb();
        },
      }),
    );
    return { out: Buffer.concat(out), error: undefined };
  } catch (error) {
    return { out: Buffer.concat(out), error };
  }
}

describe('DigestVerifier', () => {
  it.each([
    { what: 'sha256 with size', digest: sha256, size: data.length },
    { what: 'sha256 without size', digest: sha256, size: undefined },
    { what: 'sha512', digest: sha512, size: data.length },
  ])('passes matching bytes through ($what)', async ({ digest, size }) => {
    const r = await through(data, digest, size);
    expect(r.error).toBeUndefined();
    expect(r.out.equals(data)).toBe(true);
  });

  const flipped = Buffer.from(data);
  flipped.writeUInt8(flipped.readUInt8(flipped.length - 1) ^ 1, flipped.length - 1);
  it.each([
    {
      what: 'a flipped last byte, size known: held back before it leaves',
      bytes: flipped,
      size: data.length,
      code: 'CDI_REGISTRY_DIGEST_MISMATCH',
      outLength: data.length - (data.length % 997 || 997),
    },
    {
      what: 'a flipped last byte, size unknown: fails at the end',
      bytes: flipped,
      size: undefined,
      code: 'CDI_REGISTRY_DIGEST_MISMATCH',
      outLength: data.length,
    },
    {
      what: 'a short blob',
      bytes: data.subarray(0, 100),
      size: data.length,
      code: 'CDI_UNEXPECTED_EOF',
      outLength: 100,
    },
    {
      what: 'a longer blob',
      bytes: Buffer.concat([data, Buffer.from('x')]),
      size: data.length,
      code: 'CDI_REGISTRY_DIGEST_MISMATCH',
      outLength: undefined,
    },
  ])('fails on $what', async ({ bytes, size, code, outLength }) => {
    const r = await through(bytes, sha256, size);
    expect(r.error).toMatchObject({ code });
    if (outLength !== undefined) expect(r.out.length).toBe(outLength);
  });

  it('refuses an unknown algorithm', () => {
    expect(thrownCode(() => new DigestVerifier({ digest: 'md5:abc' }))).toBe(
      'CDI_REGISTRY_PULL_FAILED',
    );
  });
});
