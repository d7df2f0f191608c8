// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { vhdFooter } from './test-helpers/vhd-footer.js';
import { sniffFormat } from '../importer/format/sniff.js';
import {
  IMAGE_FORMATS,
  isVmdkDescriptor,
  sniffTrailer,
  TRAILER_BYTES,
  vmdkDescriptorExtents,
} from './formats.js';
import { CONVERTIBLE_FORMATS } from './types.js';

describe('the format table', () => {
  it.each(CONVERTIBLE_FORMATS.map((format) => ({ format })))(
    '$format: each of its signatures sniffs as $format',
    ({ format }) => {
      for (const { offset, magic } of IMAGE_FORMATS[format].signatures) {
        const head = Buffer.alloc(512);
        magic.copy(head, offset);
        expect(sniffFormat(head)).toBe(format);
      }
    },
  );

  it('finds a fixed VHD by its footer and nothing in other tails', () => {
    const f = vhdFooter({ creator: 'qemu', currentSize: 4 * 1024 * 1024, chs: [8, 16, 63] });
    expect(TRAILER_BYTES).toBe(512);
    expect(sniffTrailer(f, 8 * 1024 * 1024)).toEqual({
      format: 'vhd',
      subformat: 'fixed',
      virtualSize: 8 * 16 * 63 * 512,
      blockSize: 0,
      compressed: false,
    });
    expect(sniffTrailer(Buffer.concat([Buffer.alloc(100), f]), 8 * 1024 * 1024)?.format).toBe(
      'vhd',
    );
    expect(sniffTrailer(Buffer.alloc(512), 8 * 1024 * 1024)).toBeUndefined();
    // The disk would extend past the footer: a raw image, not a VHD.
    expect(sniffTrailer(f, 4096)).toBeUndefined();
  });

  it.each([
    {
      what: 'a vmdk descriptor',
      format: 'vmdk',
      head: '# Disk DescriptorFile\nRW 2048 FLAT "d-flat.vmdk" 0\n',
      refused: true,
    },
    { what: 'a sparse vmdk', format: 'vmdk', head: 'KDMV', refused: false },
    { what: 'a qcow2', format: 'qcow2', head: 'QFI\xfb', refused: false },
  ] as const)('refuses at sight: $what -> $refused', ({ format, head, refused }) => {
    const refusal = IMAGE_FORMATS[format].refuseHead(Buffer.from(head, 'latin1'));
    expect(refusal !== undefined).toBe(refused);
    if (refusal !== undefined) {
      expect(refusal.code).toBe('CDI_IMAGE_EXTERNAL_DATA');
      expect(refusal.message).toContain('RW 2048 FLAT "d-flat.vmdk" 0');
    }
  });
});

describe('vmdk descriptors', () => {
  it('recognises a descriptor and lists its extents', () => {
    const head = Buffer.from(
      '# Disk DescriptorFile\nversion=1\ncreateType="twoGbMaxExtentSparse"\n' +
        'RW 4192256 SPARSE "disk-s001.vmdk"\nRW 2048 SPARSE "disk-s002.vmdk"\n',
      'latin1',
    );
    expect(isVmdkDescriptor(head)).toBe(true);
    expect(vmdkDescriptorExtents(head)).toEqual([
      'RW 4192256 SPARSE "disk-s001.vmdk"',
      'RW 2048 SPARSE "disk-s002.vmdk"',
    ]);
    expect(isVmdkDescriptor(Buffer.from('KDMV'))).toBe(false);
  });
});
