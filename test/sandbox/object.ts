// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox stores every Kubernetes object as plain JSON. These types name the few fields the
 * server itself reads; everything else is kept verbatim.
 */

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A JSON object. */
export type JsonObject = { [key: string]: Json };

/** An owner reference (metadata.ownerReferences[]). */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** The metadata every object carries. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  [key: string]: unknown;
}

/** A stored object: apiVersion, kind, metadata and any other fields. */
export interface KObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** True for a plain (non-array, non-null) object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A deep copy made through JSON (objects are JSON by construction). */
export function clone<T>(value: T): T {
  return structuredClone(value);
}

/** Reads a nested field by a dotted path (`status.phase`); undefined when absent. */
export function getPath(obj: unknown, path: readonly string[]): unknown {
  let cur: unknown = obj;
  for (const part of path) {
    if (!isRecord(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

/** `namespace/name` or `name` for cluster-scoped objects. */
export function objectKey(obj: KObject): string {
  const ns = obj.metadata.namespace;
  return ns === undefined || ns === ''
    ? (obj.metadata.name ?? '')
    : `${ns}/${obj.metadata.name ?? ''}`;
}

/** A string field: strings as they are, numbers and booleans printed, anything else `fallback`. */
export function str(value: unknown, fallback = ''): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return fallback;
}
