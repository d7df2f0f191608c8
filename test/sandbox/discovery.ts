// SPDX-License-Identifier: Apache-2.0
/**
 * Discovery documents (`/api`, `/apis`, `/apis/<group>`, group/version resource lists, `/version`)
 * in the unaggregated form every client understands; kubectl falls back to it when the
 * aggregated (apidiscovery.k8s.io/v2) form is not offered.
 */
import { hasScale } from './scale.js';
import type { ResourceType, TypeRegistry } from './resources.js';

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

/** `/version`. */
export function versionInfo(): Record<string, unknown> {
  return {
    major: '1',
    minor: '32',
    gitVersion: 'v1.32.0-sandbox',
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2026-01-01T00:00:00Z',
    goVersion: 'go1.23',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

/** `/api`. */
export function coreVersions(): Record<string, unknown> {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }],
  };
}

function groupEntry(group: string, versions: readonly string[]): Record<string, unknown> {
  const gvs = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
  return { name: group, versions: gvs, preferredVersion: gvs[0] };
}

/** `/apis`, including groups served through APIService aggregation. */
export function groupList(
  types: TypeRegistry,
  aggregated: ReadonlyMap<string, string[]>,
): Record<string, unknown> {
  const groups = types.groups();
  for (const [g, vs] of aggregated) groups.set(g, [...(groups.get(g) ?? []), ...vs]);
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [...groups.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([g, vs]) => groupEntry(g, vs)),
  };
}

/** `/apis/<group>`, or undefined when no such group. */
export function groupDoc(types: TypeRegistry, group: string): Record<string, unknown> | undefined {
  const versions = types.groups().get(group);
  return versions === undefined
    ? undefined
    : { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(group, versions) };
}

function resourceEntries(t: ResourceType): Record<string, unknown>[] {
  const main: Record<string, unknown> = {
    name: t.plural,
    singularName: t.singular,
    namespaced: t.namespaced,
    kind: t.kind,
    verbs: t.verbs ?? VERBS,
  };
  if (t.shortNames.length > 0) main['shortNames'] = t.shortNames;
  if (t.categories.length > 0) main['categories'] = t.categories;
  const out = [main];
  if (t.statusSubresource) {
    out.push({
      name: `${t.plural}/status`,
      singularName: '',
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: ['get', 'patch', 'update'],
    });
  }
  if (hasScale(t)) {
    out.push({
      name: `${t.plural}/scale`,
      singularName: '',
      namespaced: t.namespaced,
      group: 'autoscaling',
      version: 'v1',
      kind: 'Scale',
      verbs: ['get', 'patch', 'update'],
    });
  }
  if (t.group === '' && t.plural === 'pods') {
    out.push({ name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] });
  }
  return out;
}

/** `/api/v1` or `/apis/<group>/<version>`, or undefined when nothing is served there. */
export function resourceList(
  types: TypeRegistry,
  group: string,
  version: string,
): Record<string, unknown> | undefined {
  const served = types.all().filter((t) => t.group === group && t.versions.includes(version));
  if (served.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group === '' ? version : `${group}/${version}`,
    resources: served.flatMap(resourceEntries),
  };
}
