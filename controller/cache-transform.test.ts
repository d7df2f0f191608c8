// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { LAST_APPLIED_ANNOTATION, trimForCache, type Trimmable } from './cache-transform.js';

const managed = [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }];

describe('trimForCache', () => {
  const rows: { what: string; input: Trimmable; expected: Trimmable }[] = [
    { what: 'an object without metadata is left alone', input: {}, expected: {} },
    {
      what: 'managedFields are dropped',
      input: { metadata: { managedFields: managed, annotations: { a: '1' } } },
      expected: { metadata: { annotations: { a: '1' } } },
    },
    {
      what: "kubectl's last-applied annotation is dropped, the others kept",
      input: { metadata: { annotations: { [LAST_APPLIED_ANNOTATION]: '{"big":1}', keep: 'x' } } },
      expected: { metadata: { annotations: { keep: 'x' } } },
    },
    {
      what: 'an object with neither is unchanged',
      input: { metadata: { annotations: { keep: 'x' } } },
      expected: { metadata: { annotations: { keep: 'x' } } },
    },
  ];
  for (const row of rows) {
    it(row.what, () => {
      expect(trimForCache(structuredClone(row.input))).toEqual(row.expected);
    });
  }

  it('returns the object it was given (changed in place)', () => {
    const obj = { metadata: { managedFields: managed } };
    expect(trimForCache(obj)).toBe(obj);
    expect('managedFields' in obj.metadata).toBe(false);
  });
});
