// SPDX-License-Identifier: Apache-2.0
/**
 * The two review APIs an extension API server calls back (`cdi apiserver --kubeconfig`):
 * TokenReview (`authentication.k8s.io/v1`) and SubjectAccessReview (`authorization.k8s.io/v1`).
 * Both are create-only and never stored, as on a real API server. The sandbox knows one bearer
 * token, whose user is {@link SANDBOX_USER}; its authorizer is deliberately small: the sandbox
 * admin (or anyone in `system:masters`) may do anything, nobody else anything.
 */
import { ApiStatusError, badRequest, StatusReasons } from './api-errors.js';
import { getPath, isRecord, str } from './object.js';
import type { UserInfo } from './tokens.js';

/** The user the sandbox's token authenticates as. */
export interface SandboxUser {
  readonly name: string;
  readonly groups: readonly string[];
}

/** The sandbox's only user (the kubeconfig's token). */
export const SANDBOX_USER: SandboxUser = {
  name: 'sandbox-admin',
  groups: ['system:masters', 'system:authenticated'],
};

/** The group every request of which is allowed. */
export const MASTERS_GROUP = 'system:masters';

/** The review resources: plural → group/version and kind. */
export const ReviewTypes = {
  tokenreviews: { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenReview' },
  subjectaccessreviews: {
    group: 'authorization.k8s.io',
    version: 'v1',
    kind: 'SubjectAccessReview',
  },
} as const;

/** The review a path names, or undefined for any other path. */
export function reviewOf(segments: readonly string[]): keyof typeof ReviewTypes | undefined {
  if (segments.length !== 4 || segments[0] !== 'apis') return undefined;
  for (const [plural, t] of Object.entries(ReviewTypes)) {
    if (segments[1] === t.group && segments[2] === t.version && segments[3] === plural)
      return plural as keyof typeof ReviewTypes;
  }
  return undefined;
}

function spec(body: unknown, kind: string): Record<string, unknown> {
  const s = getPath(body, ['spec']);
  if (!isRecord(s)) throw badRequest(`${kind} has no spec`);
  return s;
}

/**
 * Answers a POSTed review body with the review and its `status` filled in (HTTP 201).
 * `authenticate` says who a presented token is (the admin token, or a service account's).
 */
export function answerReview(
  plural: keyof typeof ReviewTypes,
  method: string,
  body: unknown,
  authenticate: (token: string) => UserInfo | undefined,
): Record<string, unknown> {
  const t = ReviewTypes[plural];
  if (method !== 'POST')
    throw new ApiStatusError(
      405,
      StatusReasons.MethodNotAllowed,
      `method ${method} is not allowed: ${plural} can only be created`,
    );
  const s = spec(body, t.kind);
  const status =
    plural === 'tokenreviews' ? tokenReviewStatus(s, authenticate) : subjectAccessReviewStatus(s);
  const meta = getPath(body, ['metadata']);
  return {
    apiVersion: `${t.group}/${t.version}`,
    kind: t.kind,
    metadata: { ...(isRecord(meta) ? meta : {}), creationTimestamp: null },
    spec: s,
    status,
  };
}

function tokenReviewStatus(
  s: Record<string, unknown>,
  authenticate: (token: string) => UserInfo | undefined,
): Record<string, unknown> {
  const token = str(s['token']);
  const user = token === '' ? undefined : authenticate(token);
  if (user === undefined) return { authenticated: false, user: {} };
  return {
    authenticated: true,
    user: {
      username: user.username,
      ...(user.uid === undefined ? {} : { uid: user.uid }),
      groups: [...user.groups],
    },
    audiences: Array.isArray(s['audiences']) ? s['audiences'] : [],
  };
}

function subjectAccessReviewStatus(s: Record<string, unknown>): Record<string, unknown> {
  const user = str(s['user']);
  const groups = Array.isArray(s['groups']) ? s['groups'].map((g) => str(g)) : [];
  if (user === SANDBOX_USER.name || groups.includes(MASTERS_GROUP))
    return { allowed: true, reason: `sandbox: ${user} may do anything` };
  const attrs = isRecord(s['resourceAttributes']) ? s['resourceAttributes'] : {};
  const what = [str(attrs['verb']), str(attrs['resource']), str(attrs['group'])]
    .filter((x) => x !== '')
    .join(' ');
  return {
    allowed: false,
    reason: `sandbox: user "${user}" is not ${SANDBOX_USER.name} nor in group ${MASTERS_GROUP}, the only identities it authorizes (${what})`,
  };
}
