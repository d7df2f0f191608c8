// SPDX-License-Identifier: Apache-2.0
/**
 * The two review APIs an extension API server calls back (`cdi apiserver --kubeconfig`):
 * TokenReview (`authentication.k8s.io/v1`) and SubjectAccessReview (`authorization.k8s.io/v1`).
 * Both are create-only and never stored, as on a real API server. Tokens are the admin's
 * ({@link SANDBOX_USER}, in `system:masters`) or service accounts'; access is decided by RBAC.
 */
import { ApiStatusError, badRequest, StatusReasons } from './api-errors.js';
import { getPath, isRecord, str } from './object.js';
import type { RequestAttributes } from './rbac.js';
import type { UserInfo } from './tokens.js';

/** How a review is decided: who a token is, and what a user may do. */
export interface ReviewDeciders {
  readonly authenticate: (token: string) => UserInfo | undefined;
  readonly authorize: (user: UserInfo, attrs: RequestAttributes) => boolean;
}

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
 * `deciders` say who a presented token is (the admin token, or a service account's) and what
 * a user may do (RBAC).
 */
export function answerReview(
  plural: keyof typeof ReviewTypes,
  method: string,
  body: unknown,
  deciders: ReviewDeciders,
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
    plural === 'tokenreviews'
      ? tokenReviewStatus(s, deciders.authenticate)
      : subjectAccessReviewStatus(s, deciders.authorize);
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
  authenticate: ReviewDeciders['authenticate'],
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

function subjectAccessReviewStatus(
  s: Record<string, unknown>,
  authorize: ReviewDeciders['authorize'],
): Record<string, unknown> {
  const user: UserInfo = {
    username: str(s['user']),
    groups: Array.isArray(s['groups']) ? s['groups'].map((g) => str(g)) : [],
  };
  const res = s['resourceAttributes'];
  const nonRes = s['nonResourceAttributes'];
  let attrs: RequestAttributes;
  if (isRecord(res)) {
    attrs = {
      verb: str(res['verb']),
      apiGroup: str(res['group']),
      resource: str(res['resource']),
      ...(str(res['subresource']) === '' ? {} : { subresource: str(res['subresource']) }),
      ...(str(res['name']) === '' ? {} : { name: str(res['name']) }),
      namespace: str(res['namespace']),
    };
  } else if (isRecord(nonRes)) attrs = { verb: str(nonRes['verb']), path: str(nonRes['path']) };
  else throw badRequest('SubjectAccessReview needs resourceAttributes or nonResourceAttributes');
  return authorize(user, attrs)
    ? { allowed: true, reason: 'RBAC: allowed by a binding of the user or its groups' }
    : { allowed: false };
}
