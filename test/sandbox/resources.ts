// SPDX-License-Identifier: Apache-2.0
/**
 * The resource types the sandbox serves: built-in kinds and those registered by CRDs. A type is
 * keyed by `group/plural`; objects of a multi-version CRD are stored once and served at every
 * version (conversion strategy None, as CDI's CRDs use).
 */
import type { Json, JsonObject } from './object.js';

/** A printer column (CRD `additionalPrinterColumns`). */
export interface PrinterColumn {
  readonly name: string;
  readonly type: string;
  readonly jsonPath: string;
  readonly description?: string;
  readonly priority?: number;
}

/** One served resource type. */
export interface ResourceType {
  /** '' for the core group. */
  readonly group: string;
  /** Served versions, preferred first. */
  readonly versions: readonly string[];
  /** Plural name, the URL segment. */
  readonly plural: string;
  readonly singular: string;
  readonly kind: string;
  readonly listKind: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly categories: readonly string[];
  /** Whether `/status` is a separate subresource (status ignored on the main resource). */
  readonly statusSubresource: boolean;
  /** The storage version's openAPIV3Schema (CRDs), for pruning and validation. */
  readonly schema?: Readonly<Record<string, unknown>>;
  /** Printer columns after Name (CRDs); built-ins get theirs from table.ts. */
  readonly printerColumns?: readonly PrinterColumn[];
  /** Registered from a CRD. */
  readonly custom: boolean;
  /** Verbs in discovery when not the usual eight (the create-only review APIs). */
  readonly verbs?: readonly string[];
}

/** `group/plural`, the store key of a type. */
export function typeKey(group: string, plural: string): string {
  return `${group}/${plural}`;
}

/** `apiVersion` string for a group and version. */
export function apiVersionOf(group: string, version: string): string {
  return group === '' ? version : `${group}/${version}`;
}

interface BuiltinRow {
  readonly gv: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly short?: readonly string[];
  readonly status?: boolean;
  readonly verbs?: readonly string[];
}

const BUILTINS: readonly BuiltinRow[] = [
  {
    gv: 'v1',
    plural: 'namespaces',
    kind: 'Namespace',
    namespaced: false,
    short: ['ns'],
    status: true,
  },
  { gv: 'v1', plural: 'nodes', kind: 'Node', namespaced: false, short: ['no'], status: true },
  { gv: 'v1', plural: 'pods', kind: 'Pod', namespaced: true, short: ['po'], status: true },
  { gv: 'v1', plural: 'services', kind: 'Service', namespaced: true, short: ['svc'], status: true },
  { gv: 'v1', plural: 'endpoints', kind: 'Endpoints', namespaced: true, short: ['ep'] },
  { gv: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  { gv: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true, short: ['cm'] },
  { gv: 'v1', plural: 'events', kind: 'Event', namespaced: true, short: ['ev'] },
  { gv: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true, short: ['sa'] },
  {
    gv: 'v1',
    plural: 'resourcequotas',
    kind: 'ResourceQuota',
    namespaced: true,
    short: ['quota'],
    status: true,
  },
  {
    gv: 'v1',
    plural: 'persistentvolumeclaims',
    kind: 'PersistentVolumeClaim',
    namespaced: true,
    short: ['pvc'],
    status: true,
  },
  {
    gv: 'v1',
    plural: 'persistentvolumes',
    kind: 'PersistentVolume',
    namespaced: false,
    short: ['pv'],
    status: true,
  },
  {
    gv: 'storage.k8s.io/v1',
    plural: 'storageclasses',
    kind: 'StorageClass',
    namespaced: false,
    short: ['sc'],
  },
  { gv: 'coordination.k8s.io/v1', plural: 'leases', kind: 'Lease', namespaced: true },
  {
    gv: 'networking.k8s.io/v1',
    plural: 'ingresses',
    kind: 'Ingress',
    namespaced: true,
    short: ['ing'],
    status: true,
  },
  {
    gv: 'apps/v1',
    plural: 'deployments',
    kind: 'Deployment',
    namespaced: true,
    short: ['deploy'],
    status: true,
  },
  {
    gv: 'apps/v1',
    plural: 'replicasets',
    kind: 'ReplicaSet',
    namespaced: true,
    short: ['rs'],
    status: true,
  },
  {
    gv: 'discovery.k8s.io/v1',
    plural: 'endpointslices',
    kind: 'EndpointSlice',
    namespaced: true,
  },
  {
    gv: 'apps/v1',
    plural: 'daemonsets',
    kind: 'DaemonSet',
    namespaced: true,
    short: ['ds'],
    status: true,
  },
  { gv: 'events.k8s.io/v1', plural: 'events', kind: 'Event', namespaced: true, short: ['ev'] },
  { gv: 'rbac.authorization.k8s.io/v1', plural: 'roles', kind: 'Role', namespaced: true },
  {
    gv: 'rbac.authorization.k8s.io/v1',
    plural: 'rolebindings',
    kind: 'RoleBinding',
    namespaced: true,
  },
  {
    gv: 'rbac.authorization.k8s.io/v1',
    plural: 'clusterroles',
    kind: 'ClusterRole',
    namespaced: false,
  },
  {
    gv: 'rbac.authorization.k8s.io/v1',
    plural: 'clusterrolebindings',
    kind: 'ClusterRoleBinding',
    namespaced: false,
  },
  {
    gv: 'apiextensions.k8s.io/v1',
    plural: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
    short: ['crd', 'crds'],
    status: true,
  },
  {
    gv: 'admissionregistration.k8s.io/v1',
    plural: 'mutatingwebhookconfigurations',
    kind: 'MutatingWebhookConfiguration',
    namespaced: false,
  },
  {
    gv: 'admissionregistration.k8s.io/v1',
    plural: 'validatingwebhookconfigurations',
    kind: 'ValidatingWebhookConfiguration',
    namespaced: false,
  },
  {
    gv: 'apiregistration.k8s.io/v1',
    plural: 'apiservices',
    kind: 'APIService',
    namespaced: false,
    status: true,
  },
  // Create-only and never stored (reviews.ts answers them).
  {
    gv: 'authentication.k8s.io/v1',
    plural: 'tokenreviews',
    kind: 'TokenReview',
    namespaced: false,
    verbs: ['create'],
  },
  {
    gv: 'authentication.k8s.io/v1',
    plural: 'selfsubjectreviews',
    kind: 'SelfSubjectReview',
    namespaced: false,
    verbs: ['create'],
  },
  {
    gv: 'authorization.k8s.io/v1',
    plural: 'selfsubjectaccessreviews',
    kind: 'SelfSubjectAccessReview',
    namespaced: false,
    verbs: ['create'],
  },
  {
    gv: 'authorization.k8s.io/v1',
    plural: 'subjectaccessreviews',
    kind: 'SubjectAccessReview',
    namespaced: false,
    verbs: ['create'],
  },
];

/** The types every sandbox starts with. */
export function builtinTypes(): ResourceType[] {
  return BUILTINS.map((row) => {
    const slash = row.gv.indexOf('/');
    const group = slash < 0 ? '' : row.gv.slice(0, slash);
    const version = slash < 0 ? row.gv : row.gv.slice(slash + 1);
    return {
      group,
      versions: [version],
      plural: row.plural,
      singular: row.kind.toLowerCase(),
      kind: row.kind,
      listKind: `${row.kind}List`,
      namespaced: row.namespaced,
      shortNames: row.short ?? [],
      categories: [],
      statusSubresource: row.status ?? false,
      custom: false,
      ...(row.verbs === undefined ? {} : { verbs: row.verbs }),
    };
  });
}

function str(obj: JsonObject | undefined, key: string): string | undefined {
  const v = obj?.[key];
  return typeof v === 'string' ? v : undefined;
}

function strList(value: Json | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function asObj(value: Json | undefined): JsonObject | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
}

/**
 * The resource type a CustomResourceDefinition declares, or an error text naming what is
 * missing. Printer columns and the status subresource come from the storage version.
 */
export function typeFromCrd(crd: JsonObject): ResourceType | string {
  const spec = asObj(crd['spec']);
  const names = asObj(spec?.['names']);
  const group = str(spec, 'group');
  const plural = str(names, 'plural');
  const kind = str(names, 'kind');
  const scope = str(spec, 'scope');
  if (group === undefined || plural === undefined || kind === undefined) {
    return 'spec.group, spec.names.plural and spec.names.kind are required';
  }
  const versionRows = Array.isArray(spec?.['versions']) ? spec['versions'].map(asObj) : [];
  const served = versionRows.filter(
    (v) => v !== undefined && v['served'] !== false,
  ) as JsonObject[];
  if (served.length === 0) return 'spec.versions must list at least one served version';
  const storage = served.find((v) => v['storage'] === true) ?? served[0];
  const columns = Array.isArray(storage?.['additionalPrinterColumns'])
    ? storage['additionalPrinterColumns'].map(asObj).flatMap((c) => {
        const name = str(c, 'name');
        const jsonPath = str(c, 'jsonPath');
        if (name === undefined || jsonPath === undefined) return [];
        const col: PrinterColumn = {
          name,
          jsonPath,
          type: str(c, 'type') ?? 'string',
          priority: typeof c?.['priority'] === 'number' ? c['priority'] : 0,
          ...(str(c, 'description') === undefined
            ? {}
            : { description: str(c, 'description') ?? '' }),
        };
        return [col];
      })
    : [];
  const schema = asObj(asObj(storage?.['schema'])?.['openAPIV3Schema']);
  return {
    group,
    // Kubernetes prefers the storage version in discovery; CDI stores v1beta1.
    versions: [
      str(storage, 'name') ?? '',
      ...served.map((v) => str(v, 'name') ?? '').filter((n) => n !== str(storage, 'name')),
    ],
    plural,
    singular: str(names, 'singular') ?? kind.toLowerCase(),
    kind,
    listKind: str(names, 'listKind') ?? `${kind}List`,
    namespaced: scope !== 'Cluster',
    shortNames: strList(names?.['shortNames']),
    categories: strList(names?.['categories']),
    statusSubresource: asObj(asObj(storage?.['subresources'])?.['status']) !== undefined,
    printerColumns: columns,
    ...(schema === undefined ? {} : { schema }),
    custom: true,
  };
}

/** All resource types, with lookups by URL segments and by kind. */
export class TypeRegistry {
  readonly #types = new Map<string, ResourceType>();

  constructor(initial: readonly ResourceType[]) {
    for (const t of initial) this.add(t);
  }

  /** Adds or replaces a type. */
  add(type: ResourceType): void {
    this.#types.set(typeKey(type.group, type.plural), type);
  }

  /** Removes a type. */
  remove(group: string, plural: string): void {
    this.#types.delete(typeKey(group, plural));
  }

  /** The type served at `group/version/plural`, if any. */
  lookup(group: string, version: string, plural: string): ResourceType | undefined {
    const t = this.#types.get(typeKey(group, plural));
    return t !== undefined && t.versions.includes(version) ? t : undefined;
  }

  /** The type stored under `group/plural`. */
  get(key: string): ResourceType | undefined {
    return this.#types.get(key);
  }

  /** The type of a group and kind (any version). */
  byKind(group: string, kind: string): ResourceType | undefined {
    for (const t of this.#types.values()) if (t.group === group && t.kind === kind) return t;
    return undefined;
  }

  /** Every type. */
  all(): ResourceType[] {
    return [...this.#types.values()];
  }

  /** Group names with their versions, preferred version first, core group excluded. */
  groups(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const t of this.#types.values()) {
      if (t.group === '') continue;
      const versions = out.get(t.group) ?? [];
      for (const v of t.versions) if (!versions.includes(v)) versions.push(v);
      out.set(t.group, versions);
    }
    return out;
  }
}
