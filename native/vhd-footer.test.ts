// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { vhdFooter } from './test-helpers/vhd-footer.js';
import { fixedVhdVirtualSize, vhdFooterVirtualSize } from './vhd-footer.js';

describe('vhdFooterVirtualSize (qemu vpc_open rule)', () => {
  it.each([
    {
      what: 'qemu creator: CHS geometry',
      f: vhdFooter({ creator: 'qemu', currentSize: 5_013_504, chs: [144, 4, 17] }),
      expected: 144 * 4 * 17 * 512,
    },
    {
      what: 'Hyper-V creator: current size, even when CHS differs',
      f: vhdFooter({ creator: 'win ', currentSize: 5_000_192, chs: [144, 4, 17] }),
      expected: 5_000_192,
    },
    {
      what: 'maximum geometry: current size',
      f: vhdFooter({ creator: 'vpc ', currentSize: 3 * 2 ** 30, chs: [65535, 16, 255] }),
      expected: 3 * 2 ** 30,
    },
    {
      what: 'tap\\0 (XenServer): current size',
      f: vhdFooter({ creator: 'tap\0', currentSize: 1 << 20, chs: [1, 1, 1] }),
      expected: 1 << 20,
    },
  ])('$what', ({ f, expected }) => {
    expect(vhdFooterVirtualSize(f)).toBe(expected);
  });
});

describe('fixedVhdVirtualSize', () => {
  const good = vhdFooter({ creator: 'win ', currentSize: 1 << 20, chs: [1, 1, 1] });
  it.each([
    { what: 'valid fixed footer', f: good, fileSize: (1 << 20) + 512, expected: 1 << 20 },
    {
      what: 'bad checksum stays raw',
      f: Buffer.concat([good.subarray(0, 100), Buffer.from([good[100]! ^ 1]), good.subarray(101)]),
      fileSize: (1 << 20) + 512,
      expected: undefined,
    },
    {
      what: 'dynamic disk type is not a fixed VHD',
      f: vhdFooter({ creator: 'win ', currentSize: 1 << 20, chs: [1, 1, 1], type: 3 }),
      fileSize: (1 << 20) + 512,
      expected: undefined,
    },
    {
      what: 'disk larger than what precedes the footer stays raw',
      f: good,
      fileSize: 4096,
      expected: undefined,
    },
    { what: 'all zeros', f: Buffer.alloc(512), fileSize: 8192, expected: undefined },
  ])('$what', ({ f, fileSize, expected }) => {
    expect(fixedVhdVirtualSize(f, fileSize)).toBe(expected);
  });
});
