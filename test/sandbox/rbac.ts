// SPDX-License-Identifier: Apache-2.0
/**
 * The RBAC authorizer, as kube-apiserver's: a request is allowed when a rule of a Role bound in
 * its namespace, or of a ClusterRole bound cluster-wide or in its namespace, matches its verb,
 * API group, resource (with subresource, `pods/log`), name (`resourceNames`) or non-resource
 * path. ClusterRoles with an `aggregationRule` hold the rules of the ClusterRoles their selectors
 * match. `system:masters` may do anything. Like the bootstrap roles `system:discovery`,
 * `system:public-info-viewer` and `system:basic-user`, every authenticated user may read the
 * discovery and OpenAPI paths and ask who it is (self reviews).
 */
import { ApiStatusError, StatusReasons } from './api-errors.js';
import type { ObjectApi } from './object-api.js';
import { isRecord, type KObject } from './object.js';
import { parseLabelSelector } from './selectors.js';
import type { UserInfo } from './tokens.js';

/** What a request asks to do. */
export type RequestAttributes =
  | {
      readonly verb: string;
      readonly apiGroup: string;
      /** Plural, without the subresource. */
      readonly resource: string;
      readonly subresource?: string;
      readonly name?: string;
      /** '' for cluster-scoped resources. */
      readonly namespace: string;
    }
  | { readonly verb: string; readonly path: string };

/** The group every request of which is allowed. */
export const MASTERS = 'system:masters';

const RBAC = 'rbac.authorization.k8s.io';

/** The verb of an HTTP request on a resource URL. */
export function verbOf(method: string, hasName: boolean, watch: boolean): string {
  switch (method) {
    case 'GET':
    case 'HEAD':
      return watch ? 'watch' : hasName ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return hasName ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
}

const strs = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

function subjectMatches(subject: unknown, user: UserInfo, bindingNs: string): boolean {
  if (!isRecord(subject)) return false;
  const name = subject['name'];
  switch (subject['kind']) {
    case 'User':
      return name === user.username;
    case 'Group':
      return typeof name === 'string' && user.groups.includes(name);
    case 'ServiceAccount': {
      const ns = typeof subject['namespace'] === 'string' ? subject['namespace'] : bindingNs;
      return user.username === `system:serviceaccount:${ns}:${String(name)}`;
    }
    default:
      return false;
  }
}

function resourceMatches(rule: Record<string, unknown>, a: RequestAttributes): boolean {
  if (!('resource' in a)) {
    return strs(rule['nonResourceURLs']).some(
      (u) => u === '*' || u === a.path || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))),
    );
  }
  const groups = strs(rule['apiGroups']);
  if (!groups.includes('*') && !groups.includes(a.apiGroup)) return false;
  const wanted = a.subresource === undefined ? a.resource : `${a.resource}/${a.subresource}`;
  const resources = strs(rule['resources']);
  const resourceOk = resources.some(
    (r) =>
      r === '*' ||
      r === wanted ||
      (a.subresource !== undefined && (r === `${a.resource}/*` || r === `*/${a.subresource}`)),
  );
  if (!resourceOk) return false;
  const names = strs(rule['resourceNames']);
  return names.length === 0 || (a.name !== undefined && names.includes(a.name));
}

function ruleAllows(rule: unknown, a: RequestAttributes): boolean {
  if (!isRecord(rule)) return false;
  const verbs = strs(rule['verbs']);
  return (verbs.includes('*') || verbs.includes(a.verb)) && resourceMatches(rule, a);
}

/** Always allowed to an authenticated user (the bootstrap roles' grants). */
function bootstrapAllows(a: RequestAttributes): boolean {
  if (!('resource' in a)) {
    const readPaths = ['/api', '/apis', '/version', '/openapi', '/healthz', '/livez', '/readyz'];
    return a.verb === 'get' && readPaths.some((p) => a.path === p || a.path.startsWith(`${p}/`));
  }
  return (
    a.verb === 'create' &&
    ((a.apiGroup === 'authentication.k8s.io' && a.resource === 'selfsubjectreviews') ||
      (a.apiGroup === 'authorization.k8s.io' &&
        (a.resource === 'selfsubjectaccessreviews' || a.resource === 'selfsubjectrulesreviews')))
  );
}

/** Decides requests from the RBAC objects in the store. */
export class Authorizer {
  constructor(readonly api: ObjectApi) {}

  #list(kind: string): KObject[] {
    const type = this.api.typeOf(`${RBAC}/v1`, kind);
    return type === undefined ? [] : this.api.list(type, undefined).items;
  }

  /** The rules of a role: its own, or those aggregated from the ClusterRoles it selects. */
  #rules(role: KObject, clusterRoles: readonly KObject[]): unknown[] {
    const own = Array.isArray(role['rules']) ? (role['rules'] as unknown[]) : [];
    const aggregation = role['aggregationRule'];
    if (!isRecord(aggregation)) return own;
    const selectors = Array.isArray(aggregation['clusterRoleSelectors'])
      ? aggregation['clusterRoleSelectors']
      : [];
    const picked = clusterRoles.filter(
      (cr) =>
        cr !== role &&
        selectors.some((s) => isRecord(s) && parseLabelSelector(labelSelectorText(s))(cr)),
    );
    return [
      ...own,
      ...picked.flatMap((cr): unknown[] => (Array.isArray(cr['rules']) ? cr['rules'] : [])),
    ];
  }

  /** Whether `user` may do `a`. */
  allows(user: UserInfo, a: RequestAttributes): boolean {
    if (user.groups.includes(MASTERS)) return true;
    if (bootstrapAllows(a)) return true;
    const clusterRoles = this.#list('ClusterRole');
    const clusterRole = (name: unknown): KObject | undefined =>
      clusterRoles.find((r) => r.metadata.name === name);
    const roleRules = (ref: unknown, ns: string): unknown[] => {
      if (!isRecord(ref)) return [];
      if (ref['kind'] === 'ClusterRole') {
        const r = clusterRole(ref['name']);
        return r === undefined ? [] : this.#rules(r, clusterRoles);
      }
      const role = this.#list('Role').find(
        (r) => r.metadata.namespace === ns && r.metadata.name === ref['name'],
      );
      return role === undefined ? [] : this.#rules(role, clusterRoles);
    };
    const bound = (b: KObject): boolean =>
      Array.isArray(b['subjects']) &&
      b['subjects'].some((s) => subjectMatches(s, user, b.metadata.namespace ?? ''));
    for (const b of this.#list('ClusterRoleBinding')) {
      if (bound(b) && roleRules(b['roleRef'], '').some((r) => ruleAllows(r, a))) return true;
    }
    if ('resource' in a && a.namespace !== '') {
      for (const b of this.#list('RoleBinding')) {
        if (b.metadata.namespace !== a.namespace || !bound(b)) continue;
        if (roleRules(b['roleRef'], a.namespace).some((r) => ruleAllows(r, a))) return true;
      }
    }
    return false;
  }
}

/** A LabelSelector object as the text form selectors.ts parses. */
function labelSelectorText(selector: Record<string, unknown>): string {
  const parts: string[] = [];
  const labels = selector['matchLabels'];
  if (isRecord(labels))
    for (const [k, v] of Object.entries(labels)) parts.push(`${k}=${String(v)}`);
  const exprs = Array.isArray(selector['matchExpressions']) ? selector['matchExpressions'] : [];
  for (const e of exprs) {
    if (!isRecord(e)) continue;
    const key = String(e['key']);
    const values = strs(e['values']).join(',');
    if (e['operator'] === 'In') parts.push(`${key} in (${values})`);
    else if (e['operator'] === 'NotIn') parts.push(`${key} notin (${values})`);
    else if (e['operator'] === 'Exists') parts.push(key);
    else if (e['operator'] === 'DoesNotExist') parts.push(`!${key}`);
  }
  return parts.join(',');
}

/** kube's 403 for a denied request. */
export function forbidden(user: UserInfo, a: RequestAttributes): ApiStatusError {
  if (!('resource' in a)) {
    return new ApiStatusError(
      403,
      StatusReasons.Forbidden,
      `forbidden: User "${user.username}" cannot ${a.verb} path "${a.path}"`,
    );
  }
  const qualified = a.apiGroup === '' ? a.resource : `${a.resource}.${a.apiGroup}`;
  const resource = a.subresource === undefined ? a.resource : `${a.resource}/${a.subresource}`;
  const subject = a.name === undefined ? qualified : `${qualified} "${a.name}"`;
  const scope = a.namespace === '' ? 'at the cluster scope' : `in the namespace "${a.namespace}"`;
  return new ApiStatusError(
    403,
    StatusReasons.Forbidden,
    `${subject} is forbidden: User "${user.username}" cannot ${a.verb} resource "${resource}" in API group "${a.apiGroup}" ${scope}`,
    { ...(a.name === undefined ? {} : { name: a.name }), group: a.apiGroup, kind: a.resource },
  );
}
