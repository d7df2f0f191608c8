// SPDX-License-Identifier: Apache-2.0
/**
 * Recognises the 512-byte footer of a fixed VHD: a fixed VHD is the raw disk followed by the
 * footer and carries nothing at its start, so a stream of it sniffs as raw. qemu reads the disk
 * size from the footer by its own rule (CHS geometry for most creators, `current_size` for
 * Hyper-V and friends; docs/adr/0012-more-image-formats.md); this module applies the same rule.
 */

/** Bytes of a VHD footer. */
export const VHD_FOOTER_BYTES = 512;
const COOKIE = Buffer.from('conectix', 'latin1');
const DISK_TYPE_FIXED = 2;
/** qemu's VHD_MAX_GEOMETRY: 65535 cylinders, 16 heads, 255 sectors. */
const MAX_GEOMETRY = 65535 * 16 * 255;
/** Creators whose images use `current_size` rather than CHS geometry (qemu's table). */
const SIZE_CREATORS = ['win ', 'qem2', 'd2v ', 'CTXS', 'tap\0'];

/** The guest size qemu reports for this footer (no validation). */
export function vhdFooterVirtualSize(footer: Buffer): number {
  const chs = footer.readUInt16BE(56) * footer.readUInt8(58) * footer.readUInt8(59);
  const creator = footer.subarray(28, 32).toString('latin1');
  const currentSize = Number(footer.readBigUInt64BE(48));
  if (SIZE_CREATORS.includes(creator) || chs === MAX_GEOMETRY) {
    return Math.floor(currentSize / 512) * 512;
  }
  return chs * 512;
}

/**
 * If `footer` (the last 512 bytes of an image of `fileSize` bytes) is the valid footer of a fixed
 * VHD, returns its virtual size; otherwise undefined. The checksum must match and the disk must
 * not extend past the footer, so a raw disk whose last sector merely starts with the cookie
 * stays raw.
 */
export function fixedVhdVirtualSize(footer: Buffer, fileSize: number): number | undefined {
  if (footer.length !== VHD_FOOTER_BYTES || fileSize < VHD_FOOTER_BYTES) return undefined;
  if (!footer.subarray(0, 8).equals(COOKIE)) return undefined;
  if (footer.readUInt32BE(60) !== DISK_TYPE_FIXED) return undefined;
  let sum = 0;
  for (let i = 0; i < VHD_FOOTER_BYTES; i++) if (i < 64 || i >= 68) sum += footer.readUInt8(i);
  if (~sum >>> 0 !== footer.readUInt32BE(64)) return undefined;
  const size = vhdFooterVirtualSize(footer);
  return size <= fileSize - VHD_FOOTER_BYTES ? size : undefined;
}
