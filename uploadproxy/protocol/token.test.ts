// SPDX-License-Identifier: Apache-2.0
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TOKEN_LIFETIME_SECONDS,
  generateTokenKeys,
  loadPrivateKey,
  parsePublicKey,
  publicKeyPemOf,
  signUploadToken,
  verifyUploadToken,
  type TokenKeys,
} from './token.js';

const run = promisify(execFile);
const target = { namespace: 'ns1', pvc: 'disk-1' };
let keys: TokenKeys;
let other: TokenKeys;
let dir: string;

beforeAll(async () => {
  [keys, other] = await Promise.all([generateTokenKeys(), generateTokenKeys()]);
  dir = await mkdtemp(path.join(tmpdir(), 'cdi-token-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('upload tokens', () => {
  it('round-trips the PVC and carries CDI claims with a 5 minute lifetime', async () => {
    const now = 1_700_000_000;
    const token = await signUploadToken(keys.privateKey, target, { now });
    const payload = JSON.parse(
      Buffer.from(token.split('.')[1] ?? '', 'base64url').toString(),
    ) as Record<string, unknown>;
    expect(payload).toMatchObject({
      iss: 'cdi-apiserver',
      operation: 'Upload',
      name: 'disk-1',
      namespace: 'ns1',
      resource: { group: '', version: 'v1', resource: 'persistentvolumeclaims' },
      iat: now,
      nbf: now,
      exp: now + TOKEN_LIFETIME_SECONDS,
    });
    expect(await verifyUploadToken(keys.publicKey, token, { now: now + 60 })).toEqual(target);
  });

  it.each([
    { what: 'expired long ago', at: 300 + 60, ok: false },
    { what: 'expired within the 10 s leeway', at: 300 + 5, ok: true },
    { what: 'not valid yet (beyond leeway)', at: -60, ok: false },
  ])('time: $what', async ({ at, ok }) => {
    const now = 1_700_000_000;
    const token = await signUploadToken(keys.privateKey, target, { now });
    const verdict = verifyUploadToken(keys.publicKey, token, { now: now + at });
    if (ok) await expect(verdict).resolves.toEqual(target);
    else
      await expect(verdict).rejects.toMatchObject({
        code: 'CDI_UPLOAD_TOKEN_INVALID',
        httpStatus: 401,
      });
  });

  it.each([
    {
      what: 'signed by another key',
      make: () => signUploadToken(other.privateKey, target),
      text: /signature/,
    },
    {
      what: 'a clone token',
      make: () => signUploadToken(keys.privateKey, target, { operation: 'Clone' }),
      text: /not for an upload/,
    },
    {
      what: 'another issuer',
      make: () =>
        new SignJWT({
          operation: 'Upload',
          name: 'a',
          namespace: 'b',
          resource: { resource: 'persistentvolumeclaims' },
        })
          .setProtectedHeader({ alg: 'PS256' })
          .setIssuer('someone')
          .setExpirationTime('5m')
          .sign(keys.privateKey),
      text: /iss/,
    },
    {
      what: 'no PVC name',
      make: () =>
        new SignJWT({
          operation: 'Upload',
          namespace: 'b',
          resource: { resource: 'persistentvolumeclaims' },
        })
          .setProtectedHeader({ alg: 'PS256' })
          .setIssuer('cdi-apiserver')
          .setExpirationTime('5m')
          .sign(keys.privateKey),
      text: /names no PVC/,
    },
    {
      what: 'alg none',
      make: () =>
        Promise.resolve(
          `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{}').toString('base64url')}.`,
        ),
      text: /invalid upload token/,
    },
  ])('refuses a token $what', async ({ make, text }) => {
    await expect(verifyUploadToken(keys.publicKey, await make())).rejects.toMatchObject({
      code: 'CDI_UPLOAD_TOKEN_INVALID',
      message: expect.stringMatching(text) as unknown,
    });
  });

  it.each([
    { what: 'PKCS#8', args: ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'] },
    { what: 'PKCS#1 (traditional)', args: ['genrsa', '-traditional', '2048'] },
  ])('loads a $what private key file and verifies with its public PEM', async ({ what, args }) => {
    const file = path.join(dir, `${what.replace(/\W/g, '')}.pem`);
    const { stdout } = await run('openssl', args);
    await writeFile(file, stdout);
    const key = await loadPrivateKey(file);
    const token = await signUploadToken(key, target);
    expect(await verifyUploadToken(await parsePublicKey(publicKeyPemOf(key)), token)).toEqual(
      target,
    );
  });

  it('a missing key file is CDI_INVALID_CONFIG naming the file', async () => {
    await expect(loadPrivateKey(path.join(dir, 'nope.pem'))).rejects.toMatchObject({
      code: 'CDI_INVALID_CONFIG',
      message: expect.stringContaining('nope.pem') as unknown,
    });
  });
});
