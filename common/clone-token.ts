// SPDX-License-Identifier: Apache-2.0
/**
 * CDI's clone token (`cdi.kubevirt.io/storage.clone.token`): a PS256 JWT the API server's
 * DataVolume webhook signs once it has checked that the requesting user may clone from the source
 * namespace (CDI `token.Payload` with operation `Clone`). It names the source claim and, in
 * `params`, the target DataVolume; the controller starts a cross-namespace clone only for a
 * DataVolume carrying a valid one (CDI `ValidateCloneTokenDV`, `validateTokenData`).
 */
import { SignJWT, jwtVerify, type CryptoKey, type JWTPayload, type KeyObject } from 'jose';
import { errorMessage } from './errors.js';

/** The DataVolume annotation holding the token. */
export const CLONE_TOKEN_ANNOTATION = 'cdi.kubevirt.io/storage.clone.token';
/** CDI's issuer and algorithm (the upload token's). */
export const CLONE_TOKEN_ISSUER = 'cdi-apiserver';
export const CLONE_TOKEN_ALGORITHM = 'PS256';
/** CDI: short-lived, 5 minutes. */
export const CLONE_TOKEN_LIFETIME_SECONDS = 300;
/**
 * The controller's long-lived copy (CDI `storage.extended.clone.token`): made once the short
 * token was checked, bound to the DataVolume's UID, so a clone may wait for its source longer.
 */
export const EXTENDED_CLONE_TOKEN_ANNOTATION = 'cdi.kubevirt.io/storage.extended.clone.token';
/** CDI's issuer and lifetime of extended tokens (10 years). */
export const EXTENDED_TOKEN_ISSUER = 'cdi-deployment';
export const EXTENDED_TOKEN_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;

/** Makes or checks an extended token (bound to the DataVolume's UID) instead of a short one. */
export interface ExtendedToken {
  readonly uid: string;
}
const LEEWAY_SECONDS = 10;

/** What a clone token grants: cloning `source` into the DataVolume `target`. */
export interface CloneGrant {
  readonly sourceNamespace: string;
  readonly sourceName: string;
  readonly targetNamespace: string;
  readonly targetName: string;
}

/** Signs a clone token (an extended one with `extended`). `now` is seconds since the epoch (tests). */
export async function signCloneToken(
  key: CryptoKey | KeyObject,
  grant: CloneGrant,
  now: number = Math.floor(Date.now() / 1000),
  extended?: ExtendedToken,
): Promise<string> {
  return new SignJWT({
    operation: 'Clone',
    name: grant.sourceName,
    namespace: grant.sourceNamespace,
    resource: { group: '', version: 'v1', resource: 'persistentvolumeclaims' },
    params: {
      targetNamespace: grant.targetNamespace,
      targetName: grant.targetName,
      ...(extended === undefined ? {} : { uid: extended.uid }),
    },
  })
    .setProtectedHeader({ alg: CLONE_TOKEN_ALGORITHM })
    .setIssuer(extended === undefined ? CLONE_TOKEN_ISSUER : EXTENDED_TOKEN_ISSUER)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(
      now +
        (extended === undefined ? CLONE_TOKEN_LIFETIME_SECONDS : EXTENDED_TOKEN_LIFETIME_SECONDS),
    )
    .sign(key);
}

function field(payload: JWTPayload, path: readonly string[]): unknown {
  let v: unknown = payload;
  for (const p of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

/**
 * Checks a token against the clone it is meant for; resolves with undefined when it is valid,
 * else with the reason (CDI's words: "error verifying token: ...", "invalid token").
 */
export async function cloneTokenProblem(
  key: CryptoKey | KeyObject,
  token: string,
  grant: CloneGrant,
  now?: number,
  extended?: ExtendedToken,
): Promise<string | undefined> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: [CLONE_TOKEN_ALGORITHM],
      issuer: extended === undefined ? CLONE_TOKEN_ISSUER : EXTENDED_TOKEN_ISSUER,
      clockTolerance: LEEWAY_SECONDS,
      ...(now === undefined ? {} : { currentDate: new Date(now * 1000) }),
    }));
  } catch (err) {
    return `error verifying token: ${errorMessage(err)}`;
  }
  const matches =
    payload['operation'] === 'Clone' &&
    payload['name'] === grant.sourceName &&
    payload['namespace'] === grant.sourceNamespace &&
    field(payload, ['resource', 'resource']) === 'persistentvolumeclaims' &&
    field(payload, ['params', 'targetNamespace']) === grant.targetNamespace &&
    field(payload, ['params', 'targetName']) === grant.targetName &&
    (extended === undefined || field(payload, ['params', 'uid']) === extended.uid);
  return matches ? undefined : 'invalid token';
}
