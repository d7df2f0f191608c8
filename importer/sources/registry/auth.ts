// SPDX-License-Identifier: Apache-2.0
/**
 * Registry authentication (distribution's token spec): parsing of `WWW-Authenticate` challenges,
 * Basic credentials, and the bearer-token exchange against the challenge's realm. Pure apart from
 * {@link fetchBearerToken}, which takes the request function it should use.
 */
import { CdiError, ErrorCodes } from '../../../common/errors.js';

/** A user name and password for the registry (CDI passes them as accessKeyId/secretKey). */
export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

/** One parsed `WWW-Authenticate` challenge. */
export interface AuthChallenge {
  /** Lower-case scheme: `basic` or `bearer`. */
  readonly scheme: string;
  /** Lower-case parameter names to their (unquoted) values. */
  readonly params: Readonly<Record<string, string>>;
}

const PARAM_RE = /\s*([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y;

/**
 * Parses a `WWW-Authenticate` header value into challenges
 * (`Bearer realm="https://auth/token",service="registry",scope="repository:r:pull"`).
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let pos = 0;
  while (pos < header.length) {
    const schemeMatch = /\s*,?\s*([a-zA-Z][a-zA-Z0-9_-]*)(?:\s+|$)/y;
    schemeMatch.lastIndex = pos;
    const m = schemeMatch.exec(header);
    if (m === null) break;
    pos = schemeMatch.lastIndex;
    const params: Record<string, string> = {};
    for (;;) {
      PARAM_RE.lastIndex = pos;
      const p = PARAM_RE.exec(header);
      if (p === null) break;
      params[(p[1] ?? '').toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
      pos = PARAM_RE.lastIndex;
    }
    challenges.push({ scheme: (m[1] ?? '').toLowerCase(), params });
  }
  return challenges;
}

/** The `Authorization` value for Basic credentials. */
export function basicAuthorization(creds: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
}

/** The pull scope of a repository, as the token server expects it. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/** What {@link fetchBearerToken} needs to call the token server. */
export interface TokenRequest {
  readonly challenge: AuthChallenge;
  readonly repository: string;
  readonly credentials: RegistryCredentials | undefined;
  /** GETs a URL with the given headers and returns the status and the JSON text. */
  readonly get: (
    url: URL,
    headers: Record<string, string>,
  ) => Promise<{ status: number; body: string }>;
}

/**
 * Exchanges a Bearer challenge for a token: GET `realm?service=...&scope=...` (with Basic
 * credentials when we have some, anonymous otherwise) and reads `token` or `access_token`.
 */
export async function fetchBearerToken(req: TokenRequest): Promise<string> {
  const realm = req.challenge.params['realm'];
  if (realm === undefined || realm === '') {
    throw new CdiError(ErrorCodes.RegistryPullFailed, 'bearer challenge without a realm');
  }
  let url: URL;
  try {
    url = new URL(realm);
  } catch (err) {
    throw new CdiError(ErrorCodes.RegistryPullFailed, `bearer realm "${realm}" is not a URL`, {
      cause: err,
    });
  }
  const service = req.challenge.params['service'];
  if (service !== undefined) url.searchParams.set('service', service);
  url.searchParams.set('scope', req.challenge.params['scope'] ?? pullScope(req.repository));
  const headers: Record<string, string> = {};
  if (req.credentials !== undefined) headers['authorization'] = basicAuthorization(req.credentials);
  const res = await req.get(url, headers);
  if (res.status !== 200) {
    throw new CdiError(
      ErrorCodes.RegistryPullFailed,
      `token request to ${url.origin}${url.pathname} failed with status ${res.status}`,
      { httpStatus: res.status, retryable: res.status >= 500 || res.status === 429 },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body);
  } catch (err) {
    throw new CdiError(ErrorCodes.RegistryPullFailed, 'token response is not JSON', { cause: err });
  }
  const obj = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<
    string,
    unknown
  >;
  const token = obj['token'] ?? obj['access_token'];
  if (typeof token !== 'string' || token === '') {
    throw new CdiError(ErrorCodes.RegistryPullFailed, 'token response holds no token');
  }
  return token;
}
