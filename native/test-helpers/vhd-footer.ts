// SPDX-License-Identifier: Apache-2.0
/** A fixed-VHD footer with a valid checksum, for the sniffing and size tests. */
export function vhdFooter(opts: {
  readonly creator: string;
  readonly currentSize: number;
  readonly chs: readonly [number, number, number];
  readonly type?: number;
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
