// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { fnv32aHex, importerPodName, joinName, scratchPvcName } from './naming.js';
import { requiredSpace, usableSpace } from './size.js';

const MIB = 1024 * 1024;

describe('names', () => {
  it.each([
    { what: 'importer pod', got: importerPodName('disk'), want: 'importer-disk' },
    { what: 'scratch claim', got: scratchPvcName('disk'), want: 'disk-scratch' },
    { what: 'fnv32a of empty', got: fnv32aHex(''), want: '811c9dc5' },
    { what: 'fnv32a of "a"', got: fnv32aHex('a'), want: 'e40c292c' },
  ])('$what', ({ got, want }) => {
    expect(got).toBe(want);
  });

  it('shortens long names with a stable hash and keeps them unique', () => {
    const a = joinName('x'.repeat(300), 'scratch');
    const b = joinName(`${'x'.repeat(299)}y`, 'scratch');
    expect(a.length).toBeLessThanOrEqual(253);
    expect(a.endsWith('-scratch')).toBe(true);
    expect(a).not.toBe(b);
    expect(importerPodName('z'.repeat(300)).length).toBeLessThanOrEqual(253);
  });
});

describe('size arithmetic', () => {
  it.each([
    { what: '100Mi at 0.5', bytes: 100 * MIB, overhead: 0.5, required: 150 * MIB },
    { what: '1Mi at 0', bytes: MIB, overhead: 0, required: MIB },
    { what: 'rounds up to 1Mi first', bytes: MIB + 1, overhead: 0, required: 2 * MIB },
    { what: '1000Mi at 0.06', bytes: 1000 * MIB, overhead: 0.06, required: 1060 * MIB },
  ])('requiredSpace $what', ({ bytes, overhead, required }) => {
    expect(requiredSpace(bytes, overhead)).toBe(required);
  });

  it.each([
    { what: '150Mi at 0.5', bytes: 150 * MIB, overhead: 0.5, usable: 100 * MIB },
    { what: '1060Mi at 0.06', bytes: 1060 * MIB, overhead: 0.06, usable: 1000 * MIB },
    { what: 'rounds down to 1Mi', bytes: 10 * MIB + 5, overhead: 0.06, usable: 9 * MIB },
  ])('usableSpace $what', ({ bytes, overhead, usable }) => {
    expect(usableSpace(bytes, overhead)).toBe(usable);
  });
});
