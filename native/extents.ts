// SPDX-License-Identifier: Apache-2.0
/**
 * The extents the native maps produce (`Qcow2Map.mapL2`, `ImageMap.mapBlocks`) and the chunks
 * consume: flat Float64Arrays of 5 numbers per extent (see binding.d.ts). This module reads and
 * writes them as {@link Extent} records, with bounds checked, so no caller indexes them by hand.
 */

/** Fields per extent. */
export const EXTENT_FIELDS = 5;
/** Extent kinds (`qcow2::ExtentKind`). */
export const ExtentKind = { Zero: 0, Data: 1, Compressed: 2, MarkerGrain: 3 } as const;

/** One guest range and where its bytes are in the image. */
export interface Extent {
  readonly guest: number;
  readonly length: number;
  /** One of {@link ExtentKind}. */
  readonly kind: number;
  readonly host: number;
  readonly hostLength: number;
}

/** `values[index]`, or a RangeError naming the index (never `undefined`). */
export function at(values: ArrayLike<number>, index: number): number {
  const v = values[index];
  if (v === undefined) {
    throw new RangeError(`index ${index} outside an array of ${values.length} numbers`);
  }
  return v;
}

/** The extents of a flat array, in order (a trailing partial extent is ignored). */
export function* extentsOf(flat: Float64Array): Generator<Extent> {
  for (let i = 0; i + EXTENT_FIELDS <= flat.length; i += EXTENT_FIELDS) {
    yield {
      guest: at(flat, i),
      length: at(flat, i + 1),
      kind: at(flat, i + 2),
      host: at(flat, i + 3),
      hostLength: at(flat, i + 4),
    };
  }
}

/** The flat array of `extents`, for the native side. */
export function flattenExtents(extents: readonly Extent[]): Float64Array {
  const flat = new Float64Array(extents.length * EXTENT_FIELDS);
  extents.forEach((e, k) => {
    flat.set([e.guest, e.length, e.kind, e.host, e.hostLength], k * EXTENT_FIELDS);
  });
  return flat;
}
