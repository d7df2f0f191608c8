// SPDX-License-Identifier: Apache-2.0
/**
 * The three patch flavours a Kubernetes API server accepts: JSON merge patch (RFC 7386), JSON
 * patch (RFC 6902) and strategic merge patch. The strategic flavour here knows the merge keys of
 * the core fields kubectl and controllers patch (containers, env, volumes, ports, conditions, ...)
 * and the `$patch`, `$setElementOrder`, `$deleteFromPrimitiveList` and `$retainKeys` directives.
 */
import { isRecord } from './object.js';

/** Patch content types. */
export const PatchTypes = {
  Merge: 'application/merge-patch+json',
  Json: 'application/json-patch+json',
  Strategic: 'application/strategic-merge-patch+json',
  Apply: 'application/apply-patch+yaml',
} as const;

/** A patch that cannot be applied; the message becomes a 422 (JSON patch test) or 400. */
export class PatchError extends Error {
  override readonly name = 'PatchError';
}

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

function unescapePointer(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/'))
    throw new PatchError(`invalid JSON pointer ${JSON.stringify(pointer)}`);
  return pointer.slice(1).split('/').map(unescapePointer);
}

type Container = Record<string, unknown> | unknown[];

function resolveParent(doc: unknown, tokens: readonly string[]): [Container, string] {
  let cur: unknown = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(token)];
    else if (isRecord(cur)) cur = cur[token];
    else cur = undefined;
    if (cur === undefined) throw new PatchError(`path ${tokens.join('/')} does not exist`);
  }
  if (!Array.isArray(cur) && !isRecord(cur))
    throw new PatchError(`path ${tokens.join('/')} does not exist`);
  return [cur, tokens[tokens.length - 1] ?? ''];
}

function readAt(doc: unknown, pointer: string): unknown {
  let cur = doc;
  for (const token of parsePointer(pointer)) {
    if (Array.isArray(cur)) cur = cur[Number(token)];
    else if (isRecord(cur)) cur = cur[token];
    else cur = undefined;
    if (cur === undefined) throw new PatchError(`path ${pointer} does not exist`);
  }
  return cur;
}

function arrayIndex(arr: unknown[], token: string, forAdd: boolean): number {
  if (forAdd && token === '-') return arr.length;
  const i = Number(token);
  if (!/^\d+$/.test(token) || i > arr.length || (!forAdd && i === arr.length)) {
    throw new PatchError(`array index ${token} out of range`);
  }
  return i;
}

function removeAt(doc: unknown, pointer: string): unknown {
  const [parent, last] = resolveParent(doc, parsePointer(pointer));
  if (Array.isArray(parent)) return parent.splice(arrayIndex(parent, last, false), 1)[0];
  if (!(last in parent)) throw new PatchError(`path ${pointer} does not exist`);
  const old = parent[last];
  delete parent[last];
  return old;
}

function addAt(doc: unknown, pointer: string, value: unknown): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return value;
  const [parent, last] = resolveParent(doc, tokens);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, true), 0, value);
  else parent[last] = value;
  return doc;
}

/** RFC 6902 JSON patch. */
export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be an array of operations');
  let doc = structuredClone(target);
  for (const op of ops) {
    if (!isRecord(op) || typeof op['op'] !== 'string' || typeof op['path'] !== 'string') {
      throw new PatchError('each JSON patch operation needs op and path');
    }
    const path = op['path'];
    const from = typeof op['from'] === 'string' ? op['from'] : '';
    switch (op['op']) {
      case 'add':
        doc = addAt(doc, path, structuredClone(op['value']));
        break;
      case 'remove':
        removeAt(doc, path);
        break;
      case 'replace':
        if (path === '') doc = structuredClone(op['value']);
        else {
          removeAt(doc, path);
          doc = addAt(doc, path, structuredClone(op['value']));
        }
        break;
      case 'move':
        doc = addAt(doc, path, removeAt(doc, from));
        break;
      case 'copy':
        doc = addAt(doc, path, structuredClone(readAt(doc, from)));
        break;
      case 'test':
        if (JSON.stringify(readAt(doc, path)) !== JSON.stringify(op['value'])) {
          throw new PatchError(`test operation failed at ${path}`);
        }
        break;
      default:
        throw new PatchError(`unknown JSON patch operation ${String(op['op'])}`);
    }
  }
  return doc;
}

/**
 * Merge keys of list fields, by field name (Kubernetes' `patchMergeKey` tags). A list field not
 * named here is replaced as a whole, as for CRDs.
 */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  ports: 'containerPort',
  conditions: 'type',
  ownerReferences: 'uid',
  imagePullSecrets: 'name',
  tolerations: 'key',
  hostAliases: 'ip',
  containerStatuses: 'name',
  initContainerStatuses: 'name',
  addresses: 'type',
  images: 'names',
};

/** Primitive lists that merge as sets (`patchStrategy:"merge"`). */
const SET_LISTS: ReadonlySet<string> = new Set(['finalizers']);

function keyOf(item: unknown, mergeKey: string): string | undefined {
  return isRecord(item) && item[mergeKey] !== undefined
    ? JSON.stringify(item[mergeKey])
    : undefined;
}

function strategicList(field: string, target: unknown, patch: unknown[]): unknown[] {
  const base: unknown[] = Array.isArray(target) ? [...(target as unknown[])] : [];
  const mergeKey = MERGE_KEYS[field];
  if (SET_LISTS.has(field)) {
    for (const v of patch)
      if (!base.some((b) => JSON.stringify(b) === JSON.stringify(v))) base.push(v);
    return base;
  }
  if (mergeKey === undefined) return structuredClone(patch);
  if (patch.some((p) => isRecord(p) && p['$patch'] === 'replace')) {
    return patch.filter((p) => !(isRecord(p) && p['$patch'] === 'replace'));
  }
  for (const item of patch) {
    const key = keyOf(item, mergeKey);
    const at = key === undefined ? -1 : base.findIndex((b) => keyOf(b, mergeKey) === key);
    if (isRecord(item) && item['$patch'] === 'delete') {
      if (at >= 0) base.splice(at, 1);
    } else if (at >= 0) {
      base[at] = strategicMergePatch(base[at], item);
    } else {
      base.push(strategicMergePatch(undefined, item));
    }
  }
  return base;
}

/** Strategic merge patch with the merge keys of the core API (see {@link MERGE_KEYS}). */
export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return structuredClone(patch);
  if (patch['$patch'] === 'replace') {
    const { $patch: _drop, ...rest } = patch;
    return structuredClone(rest);
  }
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch' || key === '$retainKeys' || key.startsWith('$setElementOrder/')) continue;
    if (key.startsWith('$deleteFromPrimitiveList/')) {
      const field = key.slice('$deleteFromPrimitiveList/'.length);
      const drop = new Set((Array.isArray(value) ? value : []).map((v) => JSON.stringify(v)));
      const current = out[field];
      if (Array.isArray(current)) out[field] = current.filter((v) => !drop.has(JSON.stringify(v)));
      continue;
    }
    if (value === null) delete out[key];
    else if (Array.isArray(value)) out[key] = strategicList(key, out[key], value);
    else if (isRecord(value)) out[key] = strategicMergePatch(out[key], value);
    else out[key] = value;
  }
  return out;
}
