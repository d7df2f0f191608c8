// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { ExtentKind, type Extent } from './extents.js';
import { takeWindowExtents } from './stream-base.js';

const data = (guest: number, host: number, length: number): Extent => ({
  guest,
  length,
  kind: ExtentKind.Data,
  host,
  hostLength: length,
});
const compressed = (guest: number, host: number, hostLength: number): Extent => ({
  guest,
  length: 4096,
  kind: ExtentKind.Compressed,
  host,
  hostLength,
});

describe('takeWindowExtents', () => {
  it.each([
    {
      what: 'takes what lies before the end, leaves the rest',
      expected: [data(0, 100, 50), data(4096, 1000, 50)],
      end: 500,
      eof: false,
      batch: [data(0, 100, 50)],
      left: [data(4096, 1000, 50)],
      carry: undefined,
    },
    {
      what: 'splits a data extent crossing the end',
      expected: [data(0, 400, 200), data(4096, 1000, 50)],
      end: 500,
      eof: false,
      batch: [data(0, 400, 100)],
      left: [data(100, 500, 100), data(4096, 1000, 50)],
      carry: undefined,
    },
    {
      what: 'keeps a compressed cluster crossing the end whole and carries from it',
      expected: [data(0, 100, 50), compressed(4096, 450, 100), data(8192, 600, 10)],
      end: 500,
      eof: false,
      batch: [data(0, 100, 50)],
      left: [compressed(4096, 450, 100), data(8192, 600, 10)],
      carry: 450,
    },
    {
      what: 'at the end of the stream takes crossing extents whole',
      expected: [data(0, 400, 200), compressed(4096, 450, 100), data(8192, 600, 10)],
      end: 500,
      eof: true,
      batch: [data(0, 400, 200), compressed(4096, 450, 100)],
      left: [data(8192, 600, 10)],
      carry: undefined,
    },
  ])('$what', ({ expected, end, eof, batch, left, carry }) => {
    const queue = [...expected];
    const took = takeWindowExtents(queue, end, eof);
    expect(took.batch).toEqual(batch);
    expect(took.carry).toBe(carry);
    expect(queue).toEqual(left);
  });
});
