// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { isCompression, sniffFormat, SNIFF_BYTES } from './sniff.js';

function at(offset: number, hex: string): Buffer {
  const buf = Buffer.alloc(SNIFF_BYTES);
  Buffer.from(hex, 'hex').copy(buf, offset);
  return buf;
}

describe('sniffFormat', () => {
  it.each([
    { what: 'gzip member', head: at(0, '1f8b0800'), expected: 'gzip' },
    { what: 'xz stream', head: at(0, 'fd377a585a000004'), expected: 'xz' },
    { what: 'zstd frame', head: at(0, '28b52ffd'), expected: 'zstd' },
    { what: 'lz4 frame', head: at(0, '04224d18'), expected: 'lz4' },
    { what: 'bzip2 stream', head: at(0, '425a6839314159265359'), expected: 'bzip2' },
    { what: 'qcow2 header', head: at(0, '514649fb00000003'), expected: 'qcow2' },
    { what: 'vmdk sparse extent', head: at(0, '4b444d56'), expected: 'vmdk' },
    {
      what: 'vmdk text descriptor',
      head: Buffer.from('# Disk DescriptorFile\nversion=1\n', 'latin1'),
      expected: 'vmdk',
    },
    { what: 'vdi signature at 0x40', head: at(0x40, '7f10dabe'), expected: 'vdi' },
    {
      what: 'vhd footer copy',
      head: at(0, Buffer.from('conectix').toString('hex')),
      expected: 'vhd',
    },
    {
      what: 'vhdx identifier',
      head: at(0, Buffer.from('vhdxfile').toString('hex')),
      expected: 'vhdx',
    },
    {
      what: 'ustar at 257',
      head: at(0x101, Buffer.from('ustar').toString('hex')),
      expected: 'tar',
    },
    { what: 'all zeros (raw)', head: Buffer.alloc(SNIFF_BYTES), expected: undefined },
    {
      what: 'ISO-like text (raw)',
      head: at(0, Buffer.from('CD001').toString('hex')),
      expected: undefined,
    },
    {
      what: 'BZh followed by text is not bzip2',
      head: at(0, Buffer.from('BZhello world').toString('hex')),
      expected: undefined,
    },
    { what: 'short input', head: Buffer.from([0x1f]), expected: undefined },
  ])('$what', ({ head, expected }) => {
    expect(sniffFormat(head)).toBe(expected);
  });

  it.each([
    ['gzip', true],
    ['zstd', true],
    ['qcow2', false],
    ['raw', false],
  ] as const)('isCompression(%s) is %s', (format, expected) => {
    expect(isCompression(format)).toBe(expected);
  });
});
