// SPDX-License-Identifier: Apache-2.0
/**
 * OAuth access tokens from a Google service-account key (the JSON file CDI mounts from the
 * `secretRef` Secret at `/google/credentials.json`). The key signs a JWT (RS256) asserting the
 * account and the read-only storage scope; its `token_uri` exchanges it for a bearer token
 * (RFC 7523, `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`).
 */
import { createPrivateKey, createSign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import type { Dispatcher } from 'undici';

import { CdiError, ErrorCodes, errorMessage, isRetryableStatus } from '../../common/errors.js';

/** Google's token endpoint, used when a key names none. */
export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';
/** Read-only access to objects: all an import needs. */
export const GCS_READ_SCOPE = 'https://www.googleapis.com/auth/devstorage.read_only';
/** Lifetime asked for the assertion; Google allows at most an hour. */
const ASSERTION_SECONDS = 3600;
/** A token answer is small; anything larger is not one. */
const MAX_TOKEN_ANSWER_BYTES = 64 * 1024;

/** The fields of a service-account key we use. */
export interface ServiceAccountKey {
  readonly clientEmail: string;
  readonly privateKey: KeyObject;
  readonly privateKeyId: string | undefined;
  readonly tokenUri: string;
}

function authError(message: string, cause?: unknown, retryable = false): CdiError {
  return new CdiError(ErrorCodes.GcsAuthFailed, message, { cause, retryable });
}

function stringField(json: Record<string, unknown>, name: string): string | undefined {
  const v = json[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Parses a key file's text; every problem is a CDI_GCS_AUTH_FAILED naming the file. */
export function parseServiceAccountKey(text: string, where: string): ServiceAccountKey {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw authError(`GCS key ${where} is not JSON: ${errorMessage(err)}`, err);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw authError(`GCS key ${where} is not a JSON object`);
  }
  const obj = json as Record<string, unknown>;
  const type = stringField(obj, 'type');
  if (type !== 'service_account') {
    throw authError(
      `GCS key ${where} has type ${JSON.stringify(type ?? null)}; only "service_account" keys are supported`,
    );
  }
  const clientEmail = stringField(obj, 'client_email');
  const pem = stringField(obj, 'private_key');
  if (clientEmail === undefined || pem === undefined) {
    throw authError(`GCS key ${where} lacks client_email or private_key`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw authError(`GCS key ${where}: private_key is not a PEM key: ${errorMessage(err)}`, err);
  }
  if (privateKey.asymmetricKeyType !== 'rsa') {
    throw authError(`GCS key ${where}: private_key is not an RSA key`);
  }
  const tokenUri = stringField(obj, 'token_uri') ?? GOOGLE_TOKEN_URI;
  if (!/^https?:\/\//i.test(tokenUri)) {
    throw authError(`GCS key ${where}: token_uri ${tokenUri} is not an http(s) URL`);
  }
  return { clientEmail, privateKey, privateKeyId: stringField(obj, 'private_key_id'), tokenUri };
}

/** Reads and parses a key file. */
export async function loadServiceAccountKey(path: string): Promise<ServiceAccountKey> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw authError(`cannot read GCS key ${path}: ${errorMessage(err)}`, err);
  }
  return parseServiceAccountKey(text, path);
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** The signed assertion (JWT, RS256) for `key`, valid from `nowSeconds` for an hour. */
export function signAssertion(key: ServiceAccountKey, nowSeconds: number): string {
  const header = {
    alg: 'RS256',
    typ: 'JWT',
    ...(key.privateKeyId === undefined ? {} : { kid: key.privateKeyId }),
  };
  const claims = {
    iss: key.clientEmail,
    scope: GCS_READ_SCOPE,
    aud: key.tokenUri,
    iat: nowSeconds,
    exp: nowSeconds + ASSERTION_SECONDS,
  };
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(input).sign(key.privateKey);
  return `${input}.${base64url(signature)}`;
}

/** An access token and when to stop using it (ms since the epoch). */
export interface AccessToken {
  readonly token: string;
  readonly expiresAtMs: number;
}

async function readAnswer(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    n += chunk.length;
    if (n > MAX_TOKEN_ANSWER_BYTES) throw authError('GCS token answer too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Exchanges a fresh assertion at the key's `token_uri` for a bearer token. */
export async function fetchAccessToken(
  key: ServiceAccountKey,
  dispatcher: Dispatcher,
  signal: AbortSignal,
): Promise<AccessToken> {
  const now = Date.now();
  const form = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
    assertion: signAssertion(key, Math.floor(now / 1000)),
  }).toString();
  const url = new URL(key.tokenUri);
  let status: number;
  let text: string;
  try {
    const answer = await dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
      signal,
    });
    status = answer.statusCode;
    text = await readAnswer(answer.body);
  } catch (err) {
    if (err instanceof CdiError) throw err;
    throw authError(`GCS token request to ${key.tokenUri} failed: ${errorMessage(err)}`, err, true);
  }
  if (status !== 200) {
    const detail = text.length > 300 ? `${text.slice(0, 300)}...` : text;
    throw authError(
      `GCS token endpoint ${key.tokenUri} refused the key of ${key.clientEmail}: HTTP ${status} ${detail}`.trimEnd(),
      undefined,
      isRetryableStatus(status),
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw authError(`GCS token endpoint ${key.tokenUri} answered no JSON`, err);
  }
  const fields =
    typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const token = stringField(fields, 'access_token');
  if (token === undefined) {
    throw authError(`GCS token endpoint ${key.tokenUri} answered no access_token`);
  }
  const expiresIn = typeof fields['expires_in'] === 'number' ? fields['expires_in'] : 3600;
  return { token, expiresAtMs: now + expiresIn * 1000 };
}
