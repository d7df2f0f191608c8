// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { fixedVhdVirtualSize, vhdFooterVirtualSize } from './vhd-footer.js';

/** A fixed-VHD footer with a valid checksum. */
function footer(opts: {
  creator: string;
  currentSize: number;
  chs: [number, number, number];
  type?: number;
}): Buffer {
  const f = Buffer.alloc(512);
  f.write('conectix', 0, 'latin1');
  f.write(opts.creator, 28, 'latin1');
  f.writeBigUInt64BE(BigInt(opts.currentSize), 40);
  f.writeBigUInt64BE(BigInt(opts.currentSize), 48);
  f.writeUInt16BE(opts.chs[0], 56);
  f[58] = opts.chs[1];
  f[59] = opts.chs[2];
  f.writeUInt32BE(opts.type ?? 2, 60);
  let sum = 0;
  for (const b of f) sum += b;
  f.writeUInt32BE(~sum >>> 0, 64);
  return f;
}

describe('vhdFooterVirtualSize (qemu vpc_open rule)', () => {
  it.each([
    {
      what: 'qemu creator: CHS geometry',
      f: footer({ creator: 'qemu', currentSize: 5_013_504, chs: [144, 4, 17] }),
      expected: 144 * 4 * 17 * 512,
    },
    {
      what: 'Hyper-V creator: current size, even when CHS differs',
      f: footer({ creator: 'win ', currentSize: 5_000_192, chs: [144, 4, 17] }),
      expected: 5_000_192,
    },
    {
      what: 'maximum geometry: current size',
      f: footer({ creator: 'vpc ', currentSize: 3 * 2 ** 30, chs: [65535, 16, 255] }),
      expected: 3 * 2 ** 30,
    },
    {
      what: 'tap\\0 (XenServer): current size',
      f: footer({ creator: 'tap\0', currentSize: 1 << 20, chs: [1, 1, 1] }),
      expected: 1 << 20,
    },
  ])('$what', ({ f, expected }) => {
    expect(vhdFooterVirtualSize(f)).toBe(expected);
  });
});

describe('fixedVhdVirtualSize', () => {
  const good = footer({ creator: 'win ', currentSize: 1 << 20, chs: [1, 1, 1] });
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
      f: footer({ creator: 'win ', currentSize: 1 << 20, chs: [1, 1, 1], type: 3 }),
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
