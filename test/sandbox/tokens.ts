// SPDX-License-Identifier: Apache-2.0
/**
 * Service-account tokens: what `kubectl create token SA` (the `serviceaccounts/token`
 * subresource, a TokenRequest) returns, and what the API server and TokenReview authenticate.
 * A token is a JWT with Kubernetes' claims (`iss`, `sub` = `system:serviceaccount:NS:NAME`,
 * `aud`, `exp`, `kubernetes.io.namespace` / `serviceaccount`), signed with HS256 by a key that
 * lives as long as the sandbox. A real cluster signs with RS256 and publishes the key through OIDC
 * discovery; nothing here reads that, so a shared secret is enough.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Who a request is. */
export interface UserInfo {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
}

/** The issuer claim, as kube-apiserver's default `--service-account-issuer`. */
export const TOKEN_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** kubectl's default: one hour, as the API server's default `expirationSeconds`. */
const DEFAULT_EXPIRATION_S = 3600;
/** The API server refuses shorter tokens (`spec.expirationSeconds` minimum). */
export const MIN_EXPIRATION_S = 600;

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** The user a service account's token authenticates as. */
export function serviceAccountUser(namespace: string, name: string, uid?: string): UserInfo {
  return {
    username: `system:serviceaccount:${namespace}:${name}`,
    ...(uid === undefined ? {} : { uid }),
    groups: [
      'system:serviceaccounts',
      `system:serviceaccounts:${namespace}`,
      'system:authenticated',
    ],
  };
}

/** Issues and verifies service-account tokens. */
export class TokenIssuer {
  readonly #key = randomBytes(32);

  /** A token for `namespace/name` (uid of the ServiceAccount) valid for `expirationSeconds`. */
  issue(opts: {
    readonly namespace: string;
    readonly name: string;
    readonly uid: string;
    readonly audiences?: readonly string[];
    readonly expirationSeconds?: number;
  }): { token: string; expiration: Date } {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + (opts.expirationSeconds ?? DEFAULT_EXPIRATION_S);
    const claims = {
      aud:
        opts.audiences !== undefined && opts.audiences.length > 0 ? opts.audiences : [TOKEN_ISSUER],
      exp,
      iat: now,
      nbf: now,
      iss: TOKEN_ISSUER,
      sub: `system:serviceaccount:${opts.namespace}:${opts.name}`,
      'kubernetes.io': {
        namespace: opts.namespace,
        serviceaccount: { name: opts.name, uid: opts.uid },
      },
    };
    const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
    const sig = createHmac('sha256', this.#key).update(unsigned).digest('base64url');
    return { token: `${unsigned}.${sig}`, expiration: new Date(exp * 1000) };
  }

  /** The user of a valid, unexpired token of ours, or undefined. */
  verify(token: string): UserInfo | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [header = '', payload = '', sig = ''] = parts;
    const expected = createHmac('sha256', this.#key).update(`${header}.${payload}`).digest();
    const given = Buffer.from(sig, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let claims: unknown;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof claims !== 'object' || claims === null) return undefined;
    const c = claims as Record<string, unknown>;
    if (typeof c['exp'] !== 'number' || c['exp'] * 1000 < Date.now()) return undefined;
    const k = c['kubernetes.io'] as
      { namespace?: unknown; serviceaccount?: { name?: unknown; uid?: unknown } } | undefined;
    const ns = k?.namespace;
    const name = k?.serviceaccount?.name;
    const uid = k?.serviceaccount?.uid;
    if (typeof ns !== 'string' || typeof name !== 'string') return undefined;
    return serviceAccountUser(ns, name, typeof uid === 'string' ? uid : undefined);
  }
}
