// SPDX-License-Identifier: Apache-2.0
/**
 * Kubernetes API semantics over the store, shared by the HTTP front end and the sandbox's own
 * controllers (provisioner, kubelet, garbage collector): create with generateName and defaults,
 * update with optimistic concurrency and a separate status subresource, the three patch types,
 * and deletion with finalizers, deletionTimestamp and propagation policies.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  alreadyExists,
  ApiStatusError,
  badRequest,
  conflict,
  invalid,
  notFound,
  StatusReasons,
} from './api-errors.js';
import { applyConfiguration, recordUpdate } from './field-managers.js';
import { clone, isRecord, type KObject } from './object.js';
import { jsonPatch, mergePatch, PatchError, PatchTypes, strategicMergePatch } from './patch.js';
import { apiVersionOf, typeKey, type ResourceType, type TypeRegistry } from './resources.js';
import { checkSchema, type FieldValidation } from './schema.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import type { ObjectStore } from './store.js';

/** Finalizers the garbage collector understands (Kubernetes' names). */
export const Finalizers = { Foreground: 'foregroundDeletion', Orphan: 'orphan' } as const;

/** `DeleteOptions.propagationPolicy`. */
export type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan';

/** Options of {@link ObjectApi.delete}. */
export interface DeleteOptions {
  readonly propagationPolicy?: PropagationPolicy;
  readonly gracePeriodSeconds?: number;
  readonly preconditions?: { readonly uid?: string; readonly resourceVersion?: string };
}

/** Options of {@link ObjectApi.update}. */
export interface UpdateOptions {
  readonly subresource?: 'status';
  /** `Strict` refuses undeclared fields of custom resources; otherwise they are pruned. */
  readonly fieldValidation?: FieldValidation;
  /** The `fieldManager` of the request: it then owns the fields it changed (managedFields). */
  readonly fieldManager?: string;
  /** The body's managedFields are the server's own (server-side apply computed them). */
  readonly managedFieldsSet?: boolean;
  /** Everything but storing: returns what would be stored. */
  readonly dryRun?: boolean;
}

type Meta = Record<string, unknown>;

/** Whether two objects' managedFields differ in anything but their times. */
function ownersDiffer(a: KObject, b: KObject): boolean {
  const owners = (o: KObject): string => {
    const list = (o.metadata as Meta)['managedFields'];
    return JSON.stringify(
      Array.isArray(list)
        ? (list as unknown[]).map((e): unknown => (isRecord(e) ? { ...e, time: '' } : e))
        : [],
    );
  };
  return owners(a) !== owners(b);
}

/** Two objects equal but for resourceVersion and managedFields. */
function sameIgnoringManagers(a: KObject, b: KObject): boolean {
  const strip = (o: KObject): string =>
    JSON.stringify({
      ...o,
      apiVersion: '',
      metadata: { ...o.metadata, resourceVersion: '', managedFields: undefined },
    });
  return strip(a) === strip(b);
}

/** What an admission hook sees. */
export interface AdmissionRequest {
  readonly operation: 'create' | 'update';
  readonly type: ResourceType;
  /** The object to store; the hook may change it. */
  readonly object: KObject;
  readonly old?: KObject;
}

/** Mutating and validating admission in one: change `object` or throw an ApiStatusError. */
export type AdmissionHook = (request: AdmissionRequest) => void;

/** Decides whether DELETE of an object is graceful (pods on a node). Returns seconds, or 0. */
export type GracePolicy = (
  type: ResourceType,
  obj: KObject,
  requested: number | undefined,
) => number;

const NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function nowIso(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(5)].map((b) => alphabet[b % alphabet.length] ?? 'x').join('');
}

/** Everything of an object but metadata and status: changes here bump `generation`. */
function specPart(obj: KObject): string {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = obj;
  return JSON.stringify(rest);
}

/** The API semantics. */
export class ObjectApi {
  readonly #hooks = new Map<string, AdmissionHook[]>();
  #grace: GracePolicy = () => 0;

  constructor(
    readonly store: ObjectStore,
    readonly types: TypeRegistry,
  ) {}

  /** Adds an admission hook for one type (`group/plural`). */
  addAdmission(key: string, hook: AdmissionHook): void {
    this.#hooks.set(key, [...(this.#hooks.get(key) ?? []), hook]);
  }

  /** Sets how long deletions of a kind are graceful (the kubelet finishes them). */
  setGracePolicy(policy: GracePolicy): void {
    this.#grace = policy;
  }

  /** The type served at `group/version/plural`, or 404. */
  type(group: string, version: string, plural: string): ResourceType {
    const t = this.types.lookup(group, version, plural);
    if (t === undefined) {
      throw new ApiStatusError(
        404,
        StatusReasons.NotFound,
        'the server could not find the requested resource',
      );
    }
    return t;
  }

  /** The type of a built-in or registered kind (for internal callers). */
  typeOf(apiVersion: string, kind: string): ResourceType | undefined {
    const slash = apiVersion.indexOf('/');
    return this.types.byKind(slash < 0 ? '' : apiVersion.slice(0, slash), kind);
  }

  /** A copy of the object presented at `version` (default: its stored version). */
  present(type: ResourceType, obj: KObject, version?: string): KObject {
    const out = clone(obj);
    out.apiVersion = apiVersionOf(type.group, version ?? type.versions[0] ?? 'v1');
    out.kind = type.kind;
    return out;
  }

  /** GET one object or 404. */
  get(type: ResourceType, namespace: string, name: string): KObject {
    const obj = this.store.get(
      typeKey(type.group, type.plural),
      type.namespaced ? namespace : '',
      name,
    );
    if (obj === undefined) throw notFound(type, name);
    return obj;
  }

  /** GET one object or undefined. */
  find(type: ResourceType, namespace: string, name: string): KObject | undefined {
    return this.store.get(typeKey(type.group, type.plural), type.namespaced ? namespace : '', name);
  }

  /** LIST with selectors; returns the items and the list's resourceVersion. */
  list(
    type: ResourceType,
    namespace: string | undefined,
    selectors: { readonly label?: string; readonly field?: string } = {},
  ): { items: KObject[]; resourceVersion: string } {
    const label = parseLabelSelector(selectors.label);
    const field = parseFieldSelector(selectors.field);
    const ns = type.namespaced ? namespace : undefined;
    const items = this.store
      .list(typeKey(type.group, type.plural), ns)
      .filter((o) => label(o) && field(o));
    return { items, resourceVersion: String(this.store.resourceVersion) };
  }

  #checkNamespace(type: ResourceType, namespace: string): void {
    if (!type.namespaced) return;
    const nsType = this.types.lookup('', 'v1', 'namespaces');
    if (nsType === undefined) return;
    const ns = this.find(nsType, '', namespace);
    if (ns === undefined) throw notFound(nsType, namespace);
    if (ns.metadata.deletionTimestamp !== undefined) {
      throw new ApiStatusError(
        403,
        StatusReasons.BadRequest,
        `unable to create new content in namespace ${namespace} because it is being terminated`,
      );
    }
  }

  #admit(request: AdmissionRequest): void {
    for (const hook of this.#hooks.get(typeKey(request.type.group, request.type.plural)) ?? [])
      hook(request);
  }

  /** POST: creates an object; `dryRun` validates without storing. */
  create(
    type: ResourceType,
    namespace: string,
    body: unknown,
    opts: {
      readonly dryRun?: boolean;
      readonly fieldValidation?: FieldValidation;
      readonly fieldManager?: string;
      readonly managedFieldsSet?: boolean;
    } = {},
  ): KObject {
    if (!isRecord(body) || !isRecord(body['metadata']))
      throw badRequest('the body must be an object with metadata');
    const obj = clone(body) as KObject;
    if (obj.kind !== undefined && obj.kind !== type.kind) {
      throw badRequest(
        `the kind of the object (${String(obj.kind)}) does not match the URL (${type.kind})`,
      );
    }
    const meta = obj.metadata;
    if (type.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== namespace) {
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      meta.namespace = namespace;
    } else delete meta.namespace;
    if ((meta.name === undefined || meta.name === '') && typeof meta.generateName === 'string') {
      meta.name = `${meta.generateName}${randomSuffix()}`;
    }
    const name = meta.name ?? '';
    if (name === '')
      throw invalid(type, '', 'metadata.name', 'Required value: name or generateName is required');
    if (name.length > 253 || !NAME_RE.test(name)) {
      throw invalid(
        type,
        name,
        'metadata.name',
        `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`,
      );
    }
    this.#checkNamespace(type, namespace);
    if (this.find(type, namespace, name) !== undefined) throw alreadyExists(type, name);
    meta.uid = randomUUID();
    meta.creationTimestamp = nowIso();
    // Only kinds with a spec track generation (ConfigMaps and Secrets have none).
    if (obj['spec'] === undefined) delete meta.generation;
    else meta.generation = 1;
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    if (type.statusSubresource && type.custom) delete obj['status'];
    obj.apiVersion = apiVersionOf(type.group, type.versions[0] ?? 'v1');
    obj.kind = type.kind;
    const checked = checkSchema(type, obj, opts.fieldValidation);
    if (opts.managedFieldsSet !== true) delete (checked.metadata as Meta)['managedFields'];
    if (opts.fieldManager !== undefined && opts.managedFieldsSet !== true) {
      (checked.metadata as Meta)['managedFields'] = recordUpdate(undefined, checked, {
        name: opts.fieldManager,
        operation: 'Update',
      });
    }
    this.#admit({ operation: 'create', type, object: checked });
    if (opts.dryRun === true) return checked;
    return this.store.put(typeKey(type.group, type.plural), checked);
  }

  /** PUT on the object or its status subresource. */
  update(
    type: ResourceType,
    namespace: string,
    name: string,
    body: unknown,
    opts: UpdateOptions = {},
  ): KObject {
    const { subresource } = opts;
    if (!isRecord(body) || !isRecord(body['metadata']))
      throw badRequest('the body must be an object with metadata');
    const incoming = clone(body) as KObject;
    if (incoming.metadata.name !== undefined && incoming.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${incoming.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    const existing = this.get(type, namespace, name);
    const rv = incoming.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== existing.metadata.resourceVersion) {
      throw conflict(
        type,
        name,
        'the object has been modified; please apply your changes to the latest version and try again',
      );
    }
    let next: KObject;
    if (subresource === 'status') {
      next = clone(existing);
      if (incoming['status'] === undefined) delete next['status'];
      else next['status'] = incoming['status'];
    } else {
      next = incoming;
      next.metadata = { ...incoming.metadata };
      if (type.statusSubresource) {
        if (existing['status'] === undefined) delete next['status'];
        else next['status'] = existing['status'];
      }
      // Fields the server owns.
      for (const k of [
        'uid',
        'creationTimestamp',
        'deletionTimestamp',
        'deletionGracePeriodSeconds',
        'generation',
      ] as const) {
        if (existing.metadata[k] === undefined) delete next.metadata[k];
        else (next.metadata as Record<string, unknown>)[k] = existing.metadata[k];
      }
      if (existing.metadata.deletionTimestamp !== undefined) {
        const added = (next.metadata.finalizers ?? []).filter(
          (f) => !(existing.metadata.finalizers ?? []).includes(f),
        );
        if (added.length > 0) {
          throw invalid(
            type,
            name,
            'metadata.finalizers',
            'Forbidden: no new finalizers can be added if the object is being deleted',
          );
        }
      }
    }
    next.metadata.name = name;
    if (type.namespaced) next.metadata.namespace = namespace;
    else delete next.metadata.namespace;
    next.apiVersion = existing.apiVersion;
    next.kind = type.kind;
    if (
      subresource !== 'status' &&
      existing.metadata.generation !== undefined &&
      specPart(next) !== specPart(existing)
    ) {
      next.metadata.generation = (existing.metadata.generation ?? 1) + 1;
    }
    next = checkSchema(type, next, subresource === 'status' ? 'Ignore' : opts.fieldValidation);
    if (opts.managedFieldsSet !== true) {
      const kept = (existing.metadata as Meta)['managedFields'];
      if (kept === undefined) delete (next.metadata as Meta)['managedFields'];
      else (next.metadata as Meta)['managedFields'] = kept;
    }
    this.#admit({ operation: 'update', type, object: next, old: existing });
    if (
      sameIgnoringManagers(next, existing) &&
      !(opts.managedFieldsSet === true && ownersDiffer(next, existing))
    )
      return existing;
    if (opts.dryRun === true) return next;
    if (opts.fieldManager !== undefined && opts.managedFieldsSet !== true) {
      (next.metadata as Meta)['managedFields'] = recordUpdate(existing, next, {
        name: opts.fieldManager,
        operation: 'Update',
        ...(subresource === undefined ? {} : { subresource }),
      });
    }
    const key = typeKey(type.group, type.plural);
    if (
      next.metadata.deletionTimestamp !== undefined &&
      (next.metadata.finalizers ?? []).length === 0
    ) {
      const grace = next.metadata.deletionGracePeriodSeconds ?? 0;
      if (grace === 0) {
        return this.store.remove(key, type.namespaced ? namespace : '', name) ?? next;
      }
    }
    return this.store.put(key, next);
  }

  /** PATCH with one of the three patch types, on the object or its status. */
  patch(
    type: ResourceType,
    target: {
      readonly namespace: string;
      readonly name: string;
      readonly subresource?: 'status';
      readonly fieldValidation?: FieldValidation;
      readonly fieldManager?: string;
      readonly dryRun?: boolean;
    },
    contentType: string,
    patch: unknown,
  ): KObject {
    const existing = this.get(type, target.namespace, target.name);
    let patched: unknown;
    try {
      if (contentType === PatchTypes.Merge) patched = mergePatch(existing, patch);
      else if (contentType === PatchTypes.Json) patched = jsonPatch(existing, patch);
      else if (contentType === PatchTypes.Strategic) {
        if (type.custom) {
          throw new ApiStatusError(
            415,
            StatusReasons.UnsupportedMediaType,
            'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
          );
        }
        patched = strategicMergePatch(existing, patch);
      } else {
        throw new ApiStatusError(
          415,
          StatusReasons.UnsupportedMediaType,
          `patch type ${contentType} is not supported by the sandbox`,
        );
      }
    } catch (err) {
      if (err instanceof PatchError)
        throw new ApiStatusError(422, StatusReasons.Invalid, err.message);
      throw err;
    }
    if (!isRecord(patched) || !isRecord(patched['metadata']))
      throw badRequest('the patch removed the metadata');
    const result = patched as KObject;
    // A patch carries a precondition only when it sets resourceVersion itself.
    const patchRv =
      isRecord(patch) && isRecord(patch['metadata'])
        ? patch['metadata']['resourceVersion']
        : undefined;
    if (typeof patchRv !== 'string')
      result.metadata.resourceVersion = existing.metadata.resourceVersion ?? '';
    return this.update(type, target.namespace, target.name, result, {
      ...(target.subresource === undefined ? {} : { subresource: target.subresource }),
      ...(target.fieldValidation === undefined ? {} : { fieldValidation: target.fieldValidation }),
      ...(target.fieldManager === undefined ? {} : { fieldManager: target.fieldManager }),
      ...(target.dryRun === undefined ? {} : { dryRun: target.dryRun }),
    });
  }

  /**
   * Server-side apply (`application/apply-patch+yaml`): creates the object or merges the
   * configuration into it, with field ownership and conflicts (field-managers.ts).
   */
  apply(
    type: ResourceType,
    target: {
      readonly namespace: string;
      readonly name: string;
      readonly subresource?: 'status';
      readonly fieldValidation?: FieldValidation;
      readonly fieldManager: string;
      readonly force: boolean;
      readonly dryRun?: boolean;
    },
    body: unknown,
  ): KObject {
    if (!isRecord(body)) throw badRequest('the apply configuration must be an object');
    const applied = clone(body) as KObject;
    applied.metadata = isRecord(applied.metadata) ? { ...applied.metadata } : {};
    if (applied.metadata.name !== undefined && applied.metadata.name !== target.name) {
      throw badRequest(
        `the name of the object (${applied.metadata.name}) does not match the name on the URL (${target.name})`,
      );
    }
    applied.metadata.name = target.name;
    const existing = this.find(type, target.namespace, target.name);
    const result = applyConfiguration({
      type,
      name: target.name,
      existing,
      applied,
      manager: target.fieldManager,
      force: target.force,
      ...(target.subresource === undefined ? {} : { subresource: target.subresource }),
    });
    const validation = {
      ...(target.fieldValidation === undefined ? {} : { fieldValidation: target.fieldValidation }),
      ...(target.dryRun === undefined ? {} : { dryRun: target.dryRun }),
    };
    if (existing === undefined) {
      return this.create(type, target.namespace, result, {
        ...validation,
        managedFieldsSet: true,
      });
    }
    result.metadata.resourceVersion = existing.metadata.resourceVersion ?? '';
    return this.update(type, target.namespace, target.name, result, {
      ...validation,
      ...(target.subresource === undefined ? {} : { subresource: target.subresource }),
      managedFieldsSet: true,
    });
  }

  /** DELETE honouring finalizers, grace periods and the propagation policy. */
  delete(type: ResourceType, namespace: string, name: string, opts: DeleteOptions = {}): KObject {
    const existing = this.get(type, namespace, name);
    const pre = opts.preconditions;
    if (pre?.uid !== undefined && pre.uid !== existing.metadata.uid) {
      throw conflict(
        type,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${existing.metadata.uid ?? ''}`,
      );
    }
    if (
      pre?.resourceVersion !== undefined &&
      pre.resourceVersion !== existing.metadata.resourceVersion
    ) {
      throw conflict(
        type,
        name,
        'the object has been modified; please apply your changes to the latest version and try again',
      );
    }
    const next = clone(existing);
    const finalizers = [...(next.metadata.finalizers ?? [])];
    const policy = opts.propagationPolicy;
    if (policy === 'Foreground' && !finalizers.includes(Finalizers.Foreground))
      finalizers.push(Finalizers.Foreground);
    if (policy === 'Orphan' && !finalizers.includes(Finalizers.Orphan))
      finalizers.push(Finalizers.Orphan);
    const grace = this.#grace(type, existing, opts.gracePeriodSeconds);
    const key = typeKey(type.group, type.plural);
    const ns = type.namespaced ? namespace : '';
    if (finalizers.length === 0 && grace === 0) {
      return this.store.remove(key, ns, name) ?? existing;
    }
    if (
      next.metadata.deletionTimestamp === undefined ||
      grace < (next.metadata.deletionGracePeriodSeconds ?? 0)
    ) {
      next.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000)
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z');
      next.metadata.deletionGracePeriodSeconds = grace;
    }
    next.metadata.finalizers = finalizers;
    if (finalizers.length === 0) delete next.metadata.finalizers;
    return this.store.put(key, next);
  }

  /** Removes an object whose graceful deletion finished (the kubelet's final DELETE). */
  finishDeletion(type: ResourceType, namespace: string, name: string): void {
    const existing = this.find(type, namespace, name);
    if (existing === undefined) return;
    if ((existing.metadata.finalizers ?? []).length > 0) {
      const next = clone(existing);
      next.metadata.deletionGracePeriodSeconds = 0;
      this.store.put(typeKey(type.group, type.plural), next);
      return;
    }
    this.store.remove(typeKey(type.group, type.plural), type.namespaced ? namespace : '', name);
  }
}
