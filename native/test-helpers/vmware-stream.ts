// SPDX-License-Identifier: Apache-2.0
/**
 * Rewrites a qemu-made streamOptimized VMDK into the layout VMware writes (OVA exports): the
 * header at offset 0 says the grain directory is at the end (GD_AT_END), the grains follow with
 * their markers, then a GT marker and grain tables, a GD marker and the directory, a footer
 * marker with the real header, and the end-of-stream marker. qemu 7.2 writes its grain tables at
 * the start instead, so this is how the tests get the other layout without VMware tools.
 */
import { readFile, writeFile } from 'node:fs/promises';

const SECTOR = 512;
const MARKER_GT = 1;
const MARKER_GD = 2;
const MARKER_FOOTER = 3;

function marker(val: bigint, size: number, type: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.writeBigUInt64LE(val, 0);
  b.writeUInt32LE(size, 8);
  b.writeUInt32LE(type, 12);
  return b;
}

function pad(b: Buffer): Buffer {
  const n = Math.ceil(b.length / SECTOR) * SECTOR;
  return n === b.length ? b : Buffer.concat([b, Buffer.alloc(n - b.length)]);
}

/** Writes `dest`, the VMware layout of the qemu streamOptimized image `src`. */
export async function toVmwareStreamLayout(src: string, dest: string): Promise<void> {
  const img = await readFile(src);
  const capacity = img.readBigUInt64LE(12);
  const granularity = img.readBigUInt64LE(20);
  const gtes = img.readUInt32LE(44);
  const gdOffset = Number(img.readBigUInt64LE(56)) * SECTOR;
  const grainOffset = Number(img.readBigUInt64LE(64)) * SECTOR;
  const grains = Number((capacity + granularity - 1n) / granularity);
  const gdEntries = Math.ceil(grains / gtes);

  const parts: Buffer[] = [img.subarray(0, grainOffset)];
  let pos = grainOffset;
  const newGt = new Uint32Array(gdEntries * gtes);
  for (let g = 0; g < gdEntries; g++) {
    const gt = img.readUInt32LE(gdOffset + g * 4) * SECTOR;
    if (gt === 0) continue;
    for (let e = 0; e < gtes && g * gtes + e < grains; e++) {
      const at = img.readUInt32LE(gt + e * 4) * SECTOR;
      if (at === 0) continue;
      const size = img.readUInt32LE(at + 8);
      const grain = pad(img.subarray(at, at + 12 + size));
      newGt[g * gtes + e] = pos / SECTOR;
      parts.push(grain);
      pos += grain.length;
    }
  }
  const gtSectors = Math.ceil((gtes * 4) / SECTOR);
  const gd = Buffer.alloc(gdEntries * 4);
  for (let g = 0; g < gdEntries; g++) {
    parts.push(marker(BigInt(gtSectors), 0, MARKER_GT));
    pos += SECTOR;
    gd.writeUInt32LE(pos / SECTOR, g * 4);
    const table = Buffer.alloc(gtSectors * SECTOR);
    for (let e = 0; e < gtes; e++) table.writeUInt32LE(newGt[g * gtes + e]!, e * 4);
    parts.push(table);
    pos += table.length;
  }
  const gdPadded = pad(gd);
  parts.push(marker(BigInt(gdPadded.length / SECTOR), 0, MARKER_GD));
  pos += SECTOR;
  const gdSector = pos / SECTOR;
  parts.push(gdPadded);
  const footer = Buffer.from(img.subarray(0, SECTOR));
  footer.writeBigUInt64LE(BigInt(gdSector), 56);
  footer.writeBigUInt64LE(0n, 48);
  parts.push(marker(1n, 0, MARKER_FOOTER), footer, Buffer.alloc(SECTOR));
  const head = parts[0]!;
  // qemu's own tables at the start are stale now: clear them so nothing can use them.
  head.fill(0, Number(img.readBigUInt64LE(48)) * SECTOR, grainOffset);
  head.writeBigUInt64LE(0xffffffffffffffffn, 56);
  head.writeBigUInt64LE(0n, 48);
  await writeFile(dest, Buffer.concat(parts));
}
