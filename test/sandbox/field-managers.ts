// SPDX-License-Identifier: Apache-2.0
/**
 * Server-side apply and field ownership (`metadata.managedFields`), as kube-apiserver keeps it,
 * simplified: a field is a path of object keys, and a list is one field (atomic), where the real
 * server also tracks list items by merge key. A write with a `fieldManager` owns the fields it
 * changed (operation Update); an apply owns the fields of its configuration (operation Apply),
 * conflicts with other managers of a field whose value it would change (409, unless forced,
 * which takes the field), and removes the fields it applied before and no longer applies when no
 * other manager owns them.
 */
import { ApiStatusError, StatusReasons } from './api-errors.js';
import { clone, isRecord, type KObject } from './object.js';
import type { ResourceType } from './resources.js';

/** One `managedFields` entry. */
export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Record<string, unknown>;
  subresource?: string;
}

/** Who writes: the manager's name and how. */
export interface FieldManager {
  readonly name: string;
  readonly operation: 'Apply' | 'Update';
  readonly subresource?: 'status';
}

type Path = readonly string[];

/** Metadata fields a manager may own; the rest is the server's. */
const OWNED_METADATA = new Set(['labels', 'annotations', 'finalizers', 'ownerReferences']);
const SKIPPED_TOP = new Set(['apiVersion', 'kind']);

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The leaf paths of an object (lists and empty objects are leaves). */
export function fieldPaths(obj: unknown, status: boolean): Path[] {
  const out: Path[] = [];
  const walk = (value: unknown, path: string[]): void => {
    if (isRecord(value) && Object.keys(value).length > 0) {
      for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
    } else out.push(path);
  };
  if (!isRecord(obj)) return out;
  for (const [k, v] of Object.entries(obj)) {
    if (SKIPPED_TOP.has(k)) continue;
    if ((k === 'status') !== status) continue;
    if (k === 'metadata') {
      if (!isRecord(v)) continue;
      for (const [mk, mv] of Object.entries(v))
        if (OWNED_METADATA.has(mk)) walk(mv, ['metadata', mk]);
      continue;
    }
    walk(v, [k]);
  }
  return out;
}

function valueAt(obj: unknown, path: Path): unknown {
  let cur = obj;
  for (const k of path) {
    if (!isRecord(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

const key = (p: Path): string => JSON.stringify(p);
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** fieldsV1 (`{"f:spec":{".":{},"f:x":{}}}`) from paths. */
function toFieldsV1(paths: readonly Path[]): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const p of paths) {
    let cur = root;
    for (const [i, k] of p.entries()) {
      const f = `f:${k}`;
      const next = (cur[f] ??= {}) as Record<string, unknown>;
      if (i < p.length - 1) next['.'] ??= {};
      cur = next;
    }
  }
  return root;
}

/** Paths from fieldsV1: an entry without children (other than `.`) is a leaf. */
function fromFieldsV1(fields: unknown, prefix: string[] = []): Path[] {
  if (!isRecord(fields)) return [];
  const out: Path[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (!k.startsWith('f:')) continue;
    const path = [...prefix, k.slice(2)];
    const children = isRecord(v) ? Object.keys(v).filter((c) => c.startsWith('f:')) : [];
    if (children.length === 0) out.push(path);
    else out.push(...fromFieldsV1(v, path));
  }
  return out;
}

function entriesOf(obj: KObject | undefined): ManagedFieldsEntry[] {
  const list = obj?.metadata['managedFields' as keyof KObject['metadata']];
  return Array.isArray(list) ? (clone(list) as ManagedFieldsEntry[]) : [];
}

function sameManager(e: ManagedFieldsEntry, m: FieldManager): boolean {
  return (
    e.manager === m.name &&
    e.operation === m.operation &&
    (e.subresource ?? '') === (m.subresource ?? '')
  );
}

/** Replaces the manager's entry with `paths`, drops `taken` from the others, drops empty ones. */
function rewrite(
  entries: ManagedFieldsEntry[],
  m: FieldManager,
  apiVersion: string,
  paths: readonly Path[],
  taken: ReadonlySet<string>,
): ManagedFieldsEntry[] {
  const out: ManagedFieldsEntry[] = [];
  for (const e of entries) {
    if (sameManager(e, m)) continue;
    const kept = fromFieldsV1(e.fieldsV1).filter((p) => !taken.has(key(p)));
    if (kept.length > 0) out.push({ ...e, fieldsV1: toFieldsV1(kept) });
  }
  if (paths.length > 0) {
    out.push({
      manager: m.name,
      operation: m.operation,
      apiVersion,
      time: now(),
      fieldsType: 'FieldsV1',
      fieldsV1: toFieldsV1(paths),
      ...(m.subresource === undefined ? {} : { subresource: m.subresource }),
    });
  }
  return out;
}

/**
 * managedFields after an Update by `m` from `old` (undefined on create) to `next`: the manager
 * gains the fields whose value it changed; other managers lose them.
 */
export function recordUpdate(
  old: KObject | undefined,
  next: KObject,
  m: FieldManager,
): ManagedFieldsEntry[] {
  const status = m.subresource === 'status';
  const changed = fieldPaths(next, status).filter((p) => !same(valueAt(old, p), valueAt(next, p)));
  const mine = entriesOf(old).find((e) => sameManager(e, m));
  const kept =
    mine === undefined
      ? []
      : fromFieldsV1(mine.fieldsV1).filter((p) => valueAt(next, p) !== undefined);
  const all = new Map<string, Path>();
  for (const p of [...kept, ...changed]) all.set(key(p), p);
  return rewrite(
    entriesOf(old),
    m,
    next.apiVersion ?? '',
    [...all.values()],
    new Set(changed.map(key)),
  );
}

/** Deep merge of an applied configuration into an object: maps merge, everything else replaces. */
function merge(target: unknown, applied: unknown): unknown {
  if (!isRecord(target) || !isRecord(applied)) return clone(applied);
  const out: Record<string, unknown> = { ...target };
  for (const [k, v] of Object.entries(applied)) out[k] = merge(out[k], v);
  return out;
}

function removePath(obj: Record<string, unknown>, path: Path): void {
  const parents: Record<string, unknown>[] = [];
  let cur: unknown = obj;
  for (const k of path.slice(0, -1)) {
    if (!isRecord(cur)) return;
    parents.push(cur);
    cur = cur[k];
  }
  if (!isRecord(cur)) return;
  delete cur[path[path.length - 1] ?? ''];
  // Maps left empty by the removal go too.
  for (let i = path.length - 2; i >= 0; i--) {
    const parent = parents[i];
    const child = parent?.[path[i] ?? ''];
    if (parent !== undefined && isRecord(child) && Object.keys(child).length === 0)
      delete parent[path[i] ?? ''];
    else break;
  }
}

/** `.spec.x` as kube prints a field in a conflict. */
function dotted(p: Path): string {
  return p.map((k) => (/^[A-Za-z0-9_-]+$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`)).join('');
}

/** The result of an apply: the object to store (with its managedFields). */
export function applyConfiguration(opts: {
  readonly type: ResourceType;
  readonly name: string;
  readonly existing: KObject | undefined;
  readonly applied: KObject;
  readonly manager: string;
  readonly force: boolean;
  readonly subresource?: 'status';
}): KObject {
  const { existing, applied } = opts;
  const status = opts.subresource === 'status';
  const m: FieldManager = {
    name: opts.manager,
    operation: 'Apply',
    ...(opts.subresource === undefined ? {} : { subresource: opts.subresource }),
  };
  const paths = fieldPaths(applied, status);
  const entries = entriesOf(existing);
  const conflicts = new Map<string, Path[]>();
  const taken = new Set<string>();
  for (const e of entries) {
    if (sameManager(e, m) || (e.subresource ?? '') !== (m.subresource ?? '')) continue;
    const theirs = new Set(fromFieldsV1(e.fieldsV1).map(key));
    for (const p of paths) {
      if (!theirs.has(key(p)) || same(valueAt(existing, p), valueAt(applied, p))) continue;
      taken.add(key(p));
      const label = `"${e.manager}"${e.operation === 'Update' ? ` using ${e.apiVersion}` : ''}`;
      conflicts.set(label, [...(conflicts.get(label) ?? []), p]);
    }
  }
  if (conflicts.size > 0 && !opts.force) throw conflictError(opts.type, opts.name, conflicts);
  const base = existing === undefined ? { metadata: {} } : clone(existing);
  const mine = entries.find((e) => sameManager(e, m));
  const othersOwn = new Set(
    entries.filter((e) => !sameManager(e, m)).flatMap((e) => fromFieldsV1(e.fieldsV1).map(key)),
  );
  const applying = new Set(paths.map(key));
  for (const p of mine === undefined ? [] : fromFieldsV1(mine.fieldsV1))
    if (!applying.has(key(p)) && !othersOwn.has(key(p))) removePath(base, p);
  const result = merge(base, applied) as KObject;
  result.metadata = { ...result.metadata };
  (result.metadata as Record<string, unknown>)['managedFields'] = rewrite(
    entries,
    m,
    applied.apiVersion ?? '',
    paths,
    taken,
  );
  return result;
}

function conflictError(
  type: ResourceType,
  name: string,
  conflicts: ReadonlyMap<string, Path[]>,
): ApiStatusError {
  const count = [...conflicts.values()].reduce((n, l) => n + l.length, 0);
  const parts: string[] = [];
  for (const [who, paths] of conflicts) {
    parts.push(
      paths.length === 1
        ? `conflict with ${who}: ${dotted(paths[0] ?? [])}`
        : `conflicts with ${who}:\n${paths.map((p) => `- ${dotted(p)}`).join('\n')}`,
    );
  }
  const message = `Apply failed with ${count} conflict${count === 1 ? '' : 's'}: ${parts.join('\n')}`;
  return new ApiStatusError(409, StatusReasons.Conflict, message, {
    name,
    group: type.group,
    kind: type.plural,
    causes: [...conflicts].flatMap(([who, paths]) =>
      paths.map((p) => ({
        reason: 'FieldManagerConflict',
        message: `conflict with ${who}`,
        field: dotted(p),
      })),
    ),
  });
}
