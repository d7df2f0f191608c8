// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { sizeExceededError, usableSpace } from './space.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('usableSpace', () => {
  it.each([
    {
      what: 'no overhead, claim smaller than free',
      requested: 10 * GiB,
      available: 20 * GiB,
      overhead: 0,
      usable: 10 * GiB,
    },
    {
      what: 'no overhead, free smaller than claim',
      requested: 10 * GiB,
      available: 3 * GiB + 5,
      overhead: 0,
      usable: 3 * GiB + 5,
    },
    {
      what: 'no claim: all free space',
      requested: undefined,
      available: 7 * GiB,
      overhead: 0,
      usable: 7 * GiB,
    },
    {
      what: 'CDI default overhead 6% on 10Gi',
      requested: 10 * GiB,
      available: 100 * GiB,
      overhead: 0.06,
      usable: 9660 * MiB,
    },
    {
      what: 'overhead 0.5 on 150Mi gives 100Mi',
      requested: 150 * MiB,
      available: 100 * GiB,
      overhead: 0.5,
      usable: 100 * MiB,
    },
    {
      what: 'rounds down to whole MiB',
      requested: 100 * MiB + 12345,
      available: 100 * GiB,
      overhead: 0.06,
      usable: 94 * MiB,
    },
  ])('$what', ({ requested, available, overhead, usable }) => {
    expect(usableSpace({ requested, available, overhead })).toBe(usable);
  });
});

describe('sizeExceededError', () => {
  it('names both sizes and carries CDI_SIZE_VALIDATION', () => {
    const err = sizeExceededError(20 * GiB, 9.5 * GiB);
    expect(err.code).toBe('CDI_SIZE_VALIDATION');
    expect(err.message).toContain('image virtual size 20Gi');
    expect(err.message).toContain('exceeds available space 9.5Gi');
  });
});
