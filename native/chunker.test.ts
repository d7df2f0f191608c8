// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';

import { Chunker, hostRanges, type WorkItem } from './chunker.js';

const Z = 0;
const D = 1;
const C = 2;
const K = 1024;

function summary(items: WorkItem[]): string[] {
  return items.map((i) =>
    i.type === 'zero'
      ? `zero ${i.offset}+${i.length}`
      : `chunk ${i.guestOffset}+${i.guestLength} [${Array.from(i.extents).join(',')}]`,
  );
}

describe('Chunker', () => {
  it.each([
    {
      what: 'a data run longer than a chunk is split',
      max: 8 * K,
      contiguousOnly: false,
      extents: [0, 20 * K, D, 100 * K, 20 * K],
      want: [
        `chunk 0+${8 * K} [0,${8 * K},1,${100 * K},${8 * K}]`,
        `chunk ${8 * K}+${8 * K} [${8 * K},${8 * K},1,${108 * K},${8 * K}]`,
        `chunk ${16 * K}+${4 * K} [${16 * K},${4 * K},1,${116 * K},${4 * K}]`,
      ],
    },
    {
      what: 'a small zero gap stays inside the chunk',
      max: 64 * K,
      contiguousOnly: false,
      extents: [0, 4 * K, D, 0, 4 * K, 4 * K, 4 * K, Z, 0, 0, 8 * K, 4 * K, C, 900, 300],
      want: [`chunk 0+${12 * K} [0,${4 * K},1,0,${4 * K},${8 * K},${4 * K},2,900,300]`],
    },
    {
      what: 'a long zero run ends the chunk and is merged across extents',
      max: 1024 * K,
      contiguousOnly: false,
      extents: [
        0,
        4 * K,
        D,
        0,
        4 * K,
        4 * K,
        64 * K,
        Z,
        0,
        0,
        68 * K,
        64 * K,
        Z,
        0,
        0,
        132 * K,
        4 * K,
        D,
        8 * K,
        4 * K,
      ],
      want: [
        `chunk 0+${4 * K} [0,${4 * K},1,0,${4 * K}]`,
        `zero ${4 * K}+${128 * K}`,
        `chunk ${132 * K}+${4 * K} [${132 * K},${4 * K},1,${8 * K},${4 * K}]`,
      ],
    },
    {
      what: 'contiguousOnly never bridges a guest gap',
      max: 1024 * K,
      contiguousOnly: true,
      extents: [0, 4 * K, D, 0, 4 * K, 8 * K, 4 * K, D, 4 * K, 4 * K],
      want: [
        `chunk 0+${4 * K} [0,${4 * K},1,0,${4 * K}]`,
        `chunk ${8 * K}+${4 * K} [${8 * K},${4 * K},1,${4 * K},${4 * K}]`,
      ],
    },
    {
      what: 'a compressed cluster that would overflow the chunk starts a new one',
      max: 8 * K,
      contiguousOnly: false,
      extents: [0, 6 * K, D, 0, 6 * K, 6 * K, 4 * K, C, 500, 100],
      want: [
        `chunk 0+${6 * K} [0,${6 * K},1,0,${6 * K}]`,
        `chunk ${6 * K}+${4 * K} [${6 * K},${4 * K},2,500,100]`,
      ],
    },
  ])('$what', ({ max, contiguousOnly, extents, want }) => {
    const c = new Chunker({ maxChunk: max, contiguousOnly });
    expect(summary([...c.push(Float64Array.from(extents)), ...c.flush()])).toEqual(want);
  });
});

describe('hostRanges', () => {
  it.each([
    {
      what: 'keeps ranges further apart than the gap and clamps to the image size',
      extents: [0, 4096, D, 8192, 4096, 4096, 4096, C, 0, 100, 8192, 4096, D, 20000, 4096],
      size: 22000,
      gap: 4096,
      want: [
        { offset: 0, length: 100 },
        { offset: 8192, length: 4096 },
        { offset: 20000, length: 2000 },
      ],
    },
    {
      what: 'merges ranges within the gap',
      extents: [0, 4096, D, 0, 4096, 4096, 4096, D, 6000, 4096],
      size: 1 << 20,
      gap: 4096,
      want: [{ offset: 0, length: 10096 }],
    },
    {
      what: 'skips zero extents',
      extents: [0, 4096, Z, 0, 0],
      size: 100,
      gap: 0,
      want: [],
    },
  ])('$what', ({ extents, size, gap, want }) => {
    expect(hostRanges(Float64Array.from(extents), size, gap)).toEqual(want);
  });
});
