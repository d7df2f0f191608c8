// SPDX-License-Identifier: Apache-2.0
/**
 * What the informer caches keep of an object: everything the reconcilers read, without the two
 * fields that are often most of an object's size and that no reconciler reads, as
 * controller-runtime's `cache.Options.DefaultTransform` with `TransformStripManagedFields` does:
 * `metadata.managedFields` (server-side apply's field owners, one entry per writer) and
 * kubectl's `last-applied-configuration` annotation (a copy of the whole manifest).
 */

/** kubectl's client-side apply annotation. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/** The part of an object the transform looks at. */
export interface Trimmable {
  metadata?: {
    managedFields?: unknown;
    annotations?: Record<string, string>;
  };
}

/**
 * Drops `managedFields` and the last-applied annotation from an object just decoded for a cache,
 * in place (nothing else holds it, and a copy would double the work per watch event); returns it.
 */
export function trimForCache<T extends Trimmable>(obj: T): T {
  const meta = obj.metadata;
  if (meta === undefined) return obj;
  if (meta.managedFields !== undefined) delete meta.managedFields;
  const anns = meta.annotations;
  if (anns !== undefined && LAST_APPLIED_ANNOTATION in anns) delete anns[LAST_APPLIED_ANNOTATION];
  return obj;
}
