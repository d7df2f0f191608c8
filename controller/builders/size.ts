// SPDX-License-Identifier: Apache-2.0
/**
 * Size arithmetic of CDI's filesystem overhead (`pkg/util/util.go`): how big a claim must be so an
 * image of a given size fits once the filesystem takes its share, and the reverse.
 */

const MIB = 1024 * 1024;
/** Overheads are percent strings with at most three decimals, so thousandths are exact. */
const SCALE = 1000;

function toThousandths(overhead: number): number {
  return Math.round(overhead * SCALE);
}

/** Rounds up to a multiple of 1 MiB. */
export function roundUpMiB(bytes: number): number {
  return Math.ceil(bytes / MIB) * MIB;
}

/** Claim size needed for an image of `bytes` with `overhead` (0.06 = 6%): ceil(roundUp(bytes, 1Mi) × (1+overhead)). */
export function requiredSpace(bytes: number, overhead: number): number {
  const t = toThousandths(overhead);
  return Math.ceil((roundUpMiB(bytes) * (SCALE + t)) / SCALE);
}

/** Image bytes that fit a claim of `bytes` with `overhead`, rounded down to 1 MiB. */
export function usableSpace(bytes: number, overhead: number): number {
  const t = toThousandths(overhead);
  const usable = Math.floor((bytes * SCALE) / (SCALE + t));
  return Math.floor(usable / MIB) * MIB;
}
