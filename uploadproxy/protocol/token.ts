// SPDX-License-Identifier: Apache-2.0
/**
 * Upload tokens (CDI `pkg/token/token.go`): JWTs signed PS256 by the API server's RSA key, verified
 * by the upload proxy with the public key. Claims: `iss: cdi-apiserver`, `iat`, `nbf`, `exp` (5
 * minutes), and CDI's private claims `operation`, `name`, `namespace`, `resource`.
 */
import { readFile } from 'node:fs/promises';
import {
  SignJWT,
  exportSPKI,
  generateKeyPair,
  importPKCS8,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type JWTPayload,
} from 'jose';
import { KeyObject, createPrivateKey, createPublicKey } from 'node:crypto';
import { CdiError, ErrorCodes, errorMessage } from '../../common/errors.js';

/** The JWS algorithm CDI signs with. */
export const TOKEN_ALGORITHM = 'PS256';
/** The issuer CDI's API server writes and the proxy requires. */
export const TOKEN_ISSUER = 'cdi-apiserver';
/** Token lifetime (CDI: 5 minutes). */
export const TOKEN_LIFETIME_SECONDS = 300;
/** Clock leeway when validating (CDI: 10 s). */
export const TOKEN_LEEWAY_SECONDS = 10;

/** Operations a token may grant (CDI `token.Operation`). */
export const TokenOperations = { Upload: 'Upload', Clone: 'Clone' } as const;
export type TokenOperation = (typeof TokenOperations)[keyof typeof TokenOperations];

/** What an upload token grants: upload into one PVC. */
export interface UploadTarget {
  readonly namespace: string;
  readonly pvc: string;
}

/** A key pair for signing and verifying tokens. */
export interface TokenKeys {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

/** Generates a fresh RSA 2048 key pair (tests, or an API server started without a key file). */
export async function generateTokenKeys(): Promise<TokenKeys> {
  const { privateKey, publicKey } = await generateKeyPair(TOKEN_ALGORITHM, {
    modulusLength: 2048,
    extractable: true,
  });
  return { privateKey, publicKey };
}

/** PEM (SPKI) of a public key, what the proxy's `APISERVER_PUBLIC_KEY` holds. */
export async function publicKeyPem(key: CryptoKey): Promise<string> {
  return exportSPKI(key);
}

/** PEM (SPKI) of the public half of a private key (the API server hands it to the proxy). */
export function publicKeyPemOf(privateKey: CryptoKey): string {
  return createPublicKey(KeyObject.from(privateKey))
    .export({ type: 'spki', format: 'pem' })
    .toString();
}

/** Reads a private key from a PEM file (PKCS#8 or PKCS#1 RSA). */
export async function loadPrivateKey(pemFile: string): Promise<CryptoKey> {
  const pem = await readKeyFile(pemFile);
  try {
    // Normalise PKCS#1 ("BEGIN RSA PRIVATE KEY") to PKCS#8, which jose imports.
    const pkcs8 = createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem' }).toString();
    // Extractable: publicKeyPemOf derives the public half through a KeyObject, which Node 24
    // deprecates (DEP0204) for non-extractable keys.
    return await importPKCS8(pkcs8, TOKEN_ALGORITHM, { extractable: true });
  } catch (err) {
    throw new CdiError(
      ErrorCodes.InvalidConfig,
      `cannot use private key ${pemFile}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

/** Imports a public key from PEM text (SPKI or an RSA certificate's key). */
export async function parsePublicKey(pem: string): Promise<CryptoKey> {
  try {
    const spki = createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString();
    return await importSPKI(spki, TOKEN_ALGORITHM);
  } catch (err) {
    throw new CdiError(ErrorCodes.InvalidConfig, `cannot use public key: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

async function readKeyFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new CdiError(
      ErrorCodes.InvalidConfig,
      `cannot read key file ${file}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

/** Options of {@link signUploadToken}. */
export interface SignOptions {
  /** Seconds since the epoch to issue at (tests); now by default. */
  readonly now?: number;
  /** Lifetime in seconds; {@link TOKEN_LIFETIME_SECONDS} by default. */
  readonly lifetimeSeconds?: number;
  readonly operation?: TokenOperation;
}

/** Signs an upload token for one PVC. */
export async function signUploadToken(
  key: CryptoKey,
  target: UploadTarget,
  options: SignOptions = {},
): Promise<string> {
  const now = options.now ?? Math.floor(Date.now() / 1000);
  return new SignJWT({
    operation: options.operation ?? TokenOperations.Upload,
    name: target.pvc,
    namespace: target.namespace,
    resource: { group: '', version: 'v1', resource: 'persistentvolumeclaims' },
  })
    .setProtectedHeader({ alg: TOKEN_ALGORITHM })
    .setIssuer(TOKEN_ISSUER)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + (options.lifetimeSeconds ?? TOKEN_LIFETIME_SECONDS))
    .sign(key);
}

function invalid(message: string, cause?: unknown): CdiError {
  return new CdiError(ErrorCodes.UploadTokenInvalid, message, {
    httpStatus: 401,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Verifies a token's signature, issuer and times (10 s leeway) and that it grants an upload into a
 * PVC; returns that PVC. Every failure is `CDI_UPLOAD_TOKEN_INVALID` with HTTP status 401.
 */
export async function verifyUploadToken(
  key: CryptoKey,
  token: string,
  options: { readonly now?: number } = {},
): Promise<UploadTarget> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: [TOKEN_ALGORITHM],
      issuer: TOKEN_ISSUER,
      clockTolerance: TOKEN_LEEWAY_SECONDS,
      ...(options.now === undefined ? {} : { currentDate: new Date(options.now * 1000) }),
    }));
  } catch (err) {
    throw invalid(`invalid upload token: ${errorMessage(err)}`, err);
  }
  const { operation, name, namespace, resource } = payload;
  if (operation !== TokenOperations.Upload) throw invalid('upload token is not for an upload');
  if (typeof name !== 'string' || name === '' || typeof namespace !== 'string' || namespace === '')
    throw invalid('upload token names no PVC');
  if (
    typeof resource !== 'object' ||
    resource === null ||
    !('resource' in resource) ||
    resource.resource !== 'persistentvolumeclaims'
  )
    throw invalid('upload token is not for a PersistentVolumeClaim');
  return { namespace, pvc: name };
}
