// SPDX-License-Identifier: Apache-2.0
import { createVerify, generateKeyPairSync } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { errorCode } from '../../common/errors.js';
import {
  GCS_READ_SCOPE,
  GOOGLE_TOKEN_URI,
  parseServiceAccountKey,
  signAssertion,
} from './gcs-token.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

function keyJson(fields: Record<string, unknown>): string {
  return JSON.stringify({
    type: 'service_account',
    client_email: 'sa@p.iam.gserviceaccount.com',
    private_key: pem,
    private_key_id: 'kid1',
    token_uri: 'http://127.0.0.1:1/token',
    ...fields,
  });
}

describe('service-account keys', () => {
  it('signs an RS256 assertion for the storage scope, verifiable with the public key', () => {
    const key = parseServiceAccountKey(keyJson({}), 'k.json');
    const jwt = signAssertion(key, 1_000_000);
    const [h = '', c = '', s = ''] = jwt.split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as unknown;
    const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as unknown;
    expect(header).toEqual({ alg: 'RS256', typ: 'JWT', kid: 'kid1' });
    expect(claims).toEqual({
      iss: 'sa@p.iam.gserviceaccount.com',
      scope: GCS_READ_SCOPE,
      aud: 'http://127.0.0.1:1/token',
      iat: 1_000_000,
      exp: 1_003_600,
    });
    const ok = createVerify('RSA-SHA256')
      .update(`${h}.${c}`)
      .verify(rsa.publicKey, Buffer.from(s, 'base64url'));
    expect(ok).toBe(true);
  });

  it("uses Google's token endpoint when the key names none", () => {
    expect(parseServiceAccountKey(keyJson({ token_uri: undefined }), 'k').tokenUri).toBe(
      GOOGLE_TOKEN_URI,
    );
  });

  it.each([
    { what: 'not JSON', text: '{', message: /k\.json is not JSON/ },
    { what: 'an array', text: '[]', message: /not a JSON object/ },
    {
      what: 'a user credential',
      text: keyJson({ type: 'authorized_user' }),
      message: /type "authorized_user"; only "service_account"/,
    },
    { what: 'no email', text: keyJson({ client_email: '' }), message: /lacks client_email/ },
    { what: 'a bad PEM', text: keyJson({ private_key: 'nope' }), message: /not a PEM key/ },
    {
      what: 'an EC key',
      text: keyJson({ private_key: ec.privateKey.export({ type: 'pkcs8', format: 'pem' }) }),
      message: /not an RSA key/,
    },
    {
      what: 'a file: token_uri',
      text: keyJson({ token_uri: 'file:///x' }),
      message: /not an http/,
    },
  ])('refuses $what', ({ text, message }) => {
    let thrown: unknown;
    try {
      parseServiceAccountKey(text, 'k.json');
    } catch (err) {
      thrown = err;
    }
    expect(errorCode(thrown)).toBe('CDI_GCS_AUTH_FAILED');
    expect(String(thrown)).toMatch(message);
  });
});
