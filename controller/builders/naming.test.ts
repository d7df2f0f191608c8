// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { uploadServiceName } from '../../common/contract.js';
import { fnv32aHex, importerPodName, joinName, scratchPvcName, uploadPodName } from './naming.js';
import { requiredSpace, usableSpace } from './size.js';

const MIB = 1024 * 1024;

describe('names', () => {
  it.each([
    { what: 'importer pod', got: importerPodName('disk'), want: 'importer-disk' },
    { what: 'scratch claim', got: scratchPvcName('disk'), want: 'disk-scratch' },
    { what: 'upload pod', got: uploadPodName('disk'), want: 'cdi-upload-disk' },
    { what: 'upload service', got: uploadServiceName('my.disk'), want: 'cdi-upload-my-disk' },
    {
      what: 'upload service cut to a DNS label without a trailing dash',
      got: uploadServiceName(`${'a'.repeat(51)}-b`),
      want: `cdi-upload-${'a'.repeat(51)}`,
    },
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
    expect(uploadPodName('z'.repeat(300)).length).toBeLessThanOrEqual(253);
    expect(uploadServiceName('z'.repeat(300)).length).toBe(63);
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
