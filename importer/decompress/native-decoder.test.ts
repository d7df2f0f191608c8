// SPDX-License-Identifier: Apache-2.0
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { POOL_BLOCK_BYTES } from '../sink/block-pool.js';
import { isZeroBlockView } from '../sink/zero-block.js';
import { NativeDecoder, type NativeDecoderFormat } from './native-decoder.js';

/** Runs a compression tool over `input` (fixtures are made at test time, never committed). */
function tool(command: string, args: readonly string[], input: Buffer): Buffer {
  const r = spawnSync(command, [...args], { input, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${String(r.stderr)}`);
  return r.stdout;
}

const xz = (input: Buffer, ...args: string[]): Buffer => tool('xz', ['-c', ...args], input);
const gzip = (input: Buffer): Buffer => tool('gzip', ['-c'], input);
const pigz = (input: Buffer): Buffer => tool('pigz', ['-c'], input);

/** The member with FNAME and FCOMMENT set and both fields inserted after the fixed header. */
function withNameAndComment(member: Buffer): Buffer {
  const header = Buffer.from(member.subarray(0, 10));
  header[3] = (header[3] ?? 0) | 0x08 | 0x10;
  return Buffer.concat([header, Buffer.from('disk.img\0a comment\0'), member.subarray(10)]);
}

function flip(buf: Buffer, at: number): Buffer {
  const copy = Buffer.from(buf);
  copy[at] = (copy[at] ?? 0) ^ 0x55;
  return copy;
}

function chunks(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < buf.length; off += size) out.push(buf.subarray(off, off + size));
  return out;
}

interface Decoded {
  readonly out: Buffer;
  readonly zeroViews: number;
  /** Most decoded bytes ever waiting in the decoder's readable buffer. */
  readonly maxBuffered: number;
}

async function decode(
  format: NativeDecoderFormat,
  input: Buffer[],
  slowSink = false,
): Promise<Decoded> {
  const parts: Buffer[] = [];
  const decoder = new NativeDecoder(format);
  let zeroViews = 0;
  let maxBuffered = 0;
  await pipeline(
    Readable.from(input),
    decoder,
    new Writable({
      highWaterMark: 1 << 20,
      write: (c: Buffer, _e, cb) => {
        if (isZeroBlockView(c)) zeroViews++;
        // Copied: a block may be recycled once written.
        parts.push(Buffer.from(c));
        maxBuffered = Math.max(maxBuffered, decoder.readableLength);
        if (slowSink) void tick().then(() => cb());
        else cb();
      },
    }),
  );
  return { out: Buffer.concat(parts), zeroViews, maxBuffered };
}

/** Text, random bytes and a run of zeros: compressible, incompressible and sparse parts. */
function payload(): Buffer {
  return Buffer.concat([
    Buffer.from('a VM disk block '.repeat(64_000)),
    randomBytes(1 << 20),
    Buffer.alloc(3 << 20),
    randomBytes(300_000),
  ]);
}

describe('NativeDecoder', () => {
  const data = payload();
  const other = Buffer.from('the second stream '.repeat(10_000));

  it.each([
    { what: 'single-block xz', format: 'xz', make: () => xz(data, '-T1'), want: data },
    {
      what: 'multi-block xz (xz -T2)',
      format: 'xz',
      make: () => xz(data, '-T2', '--block-size=512KiB'),
      want: data,
    },
    {
      what: 'concatenated xz streams',
      format: 'xz',
      make: () => Buffer.concat([xz(data, '-T2', '--block-size=1MiB'), xz(other)]),
      want: Buffer.concat([data, other]),
    },
    {
      what: 'xz stream padding',
      format: 'xz',
      make: () => Buffer.concat([xz(other), Buffer.alloc(8), xz(other)]),
      want: Buffer.concat([other, other]),
    },
    {
      what: 'xz with SHA-256 and without integrity checks',
      format: 'xz',
      make: () => Buffer.concat([xz(other, '--check=sha256'), xz(other, '--check=none')]),
      want: Buffer.concat([other, other]),
    },
    { what: 'gzip', format: 'gzip', make: () => gzip(data), want: data },
    {
      what: 'gzip with a file name and a comment in its header',
      format: 'gzip',
      make: () => withNameAndComment(gzip(other)),
      want: other,
    },
    { what: 'pigz', format: 'gzip', make: () => pigz(data), want: data },
    {
      what: 'concatenated gzip members',
      format: 'gzip',
      make: () => Buffer.concat([gzip(data), pigz(other), gzip(Buffer.alloc(0))]),
      want: Buffer.concat([data, other]),
    },
    {
      what: 'gzip followed by zero padding',
      format: 'gzip',
      make: () => Buffer.concat([gzip(other), Buffer.alloc(512)]),
      want: other,
    },
  ] as const)('decodes $what like the tools', async ({ format, make, want }) => {
    const compressed = make();
    for (const size of [1 << 30, 65_536, 1000]) {
      const { out } = await decode(format, chunks(compressed, size));
      expect(out.length).toBe(want.length);
      expect(out.equals(want)).toBe(true);
    }
  });

  it.each(['xz', 'gzip'] as const)('decodes %s from byte-sized input chunks', async (format) => {
    const compressed = format === 'xz' ? xz(other) : gzip(other);
    const { out } = await decode(format, chunks(compressed, 1));
    expect(out.equals(other)).toBe(true);
  });

  it.each(['xz', 'gzip'] as const)(
    'hands out %s zero blocks as ZERO_BLOCK views',
    async (format) => {
      const sparse = Buffer.concat([randomBytes(4096), Buffer.alloc(12 << 20), randomBytes(4096)]);
      const compressed = format === 'xz' ? xz(sparse, '-T2', '--block-size=2MiB') : gzip(sparse);
      const { out, zeroViews } = await decode(format, [compressed]);
      expect(out.equals(sparse)).toBe(true);
      // 12 MiB of zeros from offset 4 KiB: at least 11 whole 1 MiB blocks are zeros.
      expect(zeroViews).toBeGreaterThanOrEqual(11);
    },
  );

  it.each(['xz', 'gzip'] as const)(
    'keeps a %s decompression bomb bounded behind a slow sink',
    async (format) => {
      const zeros = Buffer.alloc(256 << 20);
      const bomb = format === 'xz' ? xz(zeros, '-T2', '-0') : tool('gzip', ['-c', '-1'], zeros);
      expect(bomb.length).toBeLessThan(2 << 20);
      const { out, maxBuffered } = await decode(format, [bomb], true);
      expect(out.length).toBe(zeros.length);
      // The readable high-water mark (2 blocks) plus one call's blocks (8), not 256 MiB.
      expect(maxBuffered).toBeLessThanOrEqual(10 * POOL_BLOCK_BYTES);
    },
  );

  it.each([
    { what: 'empty xz input', format: 'xz', make: () => Buffer.alloc(0), message: /truncated/ },
    {
      what: 'truncated xz',
      format: 'xz',
      make: () => xz(data).subarray(0, 100_000),
      message: /xz stream is truncated/,
    },
    {
      what: 'xz with a flipped byte',
      format: 'xz',
      make: () => flip(xz(data), 50_000),
      message: /xz stream is corrupt/,
    },
    {
      what: 'xz followed by garbage',
      format: 'xz',
      make: () => Buffer.concat([xz(other), Buffer.from('garbage after the stream')]),
      message: /xz stream is corrupt/,
    },
    { what: 'empty gzip input', format: 'gzip', make: () => Buffer.alloc(0), message: /truncated/ },
    {
      what: 'truncated gzip',
      format: 'gzip',
      make: () => gzip(data).subarray(0, 100_000),
      message: /gzip stream is truncated/,
    },
    {
      what: 'gzip cut inside its trailer',
      format: 'gzip',
      make: () => {
        const g = gzip(other);
        return g.subarray(0, g.length - 3);
      },
      message: /gzip stream is truncated/,
    },
    {
      what: 'gzip with a flipped byte',
      format: 'gzip',
      make: () => flip(gzip(data), 50_000),
      message: /gzip stream is corrupt/,
    },
    {
      what: 'gzip with a wrong CRC',
      format: 'gzip',
      make: () => {
        const g = gzip(other);
        return flip(g, g.length - 6);
      },
      message: /CRC or length/,
    },
    {
      what: 'gzip followed by a few bytes of garbage',
      format: 'gzip',
      make: () => Buffer.concat([gzip(other), Buffer.from('garbage!')]),
      message: /trailing garbage/,
    },
    {
      what: 'gzip followed by zeros and then garbage',
      format: 'gzip',
      make: () => Buffer.concat([gzip(other), Buffer.alloc(16), Buffer.from('x')]),
      message: /trailing garbage/,
    },
    {
      what: 'input that is not gzip',
      format: 'gzip',
      make: () => Buffer.from('plain text, not gzip'),
      message: /not in gzip format/,
    },
  ] as const)('fails $what with CDI_DECOMPRESS_FAILED', async ({ format, make, message }) => {
    const err = await decode(format, chunks(make(), 65_536)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CDI_DECOMPRESS_FAILED' });
    expect(String(err)).toMatch(message);
  });

  it.each(['xz', 'gzip'] as const)(
    'never yields wrong %s data silently: every flipped byte is an error or changes nothing',
    async (format) => {
      const small = Buffer.concat([Buffer.from('some text '.repeat(3000)), randomBytes(20_000)]);
      const compressed = format === 'xz' ? xz(small, '-T2', '--block-size=16KiB') : gzip(small);
      // Every 61st byte and the last 32 (trailers, index, footer).
      const offsets = [];
      for (let at = 0; at < compressed.length; at += 61) offsets.push(at);
      for (let at = Math.max(0, compressed.length - 32); at < compressed.length; at++)
        offsets.push(at);
      let failures = 0;
      for (const at of offsets) {
        const result = await decode(format, [flip(compressed, at)]).catch((e: unknown) => e);
        if (result instanceof Error) {
          expect(result).toMatchObject({ code: 'CDI_DECOMPRESS_FAILED' });
          failures++;
        } else {
          // Only fields without meaning for the data (gzip's MTIME, XFL, OS) may change freely.
          expect((result as Decoded).out.equals(small)).toBe(true);
        }
      }
      expect(failures).toBeGreaterThan(offsets.length * 0.9);
    },
    60_000,
  );

  it('stops cleanly when the sink fails while a call is in flight', async () => {
    const compressed = xz(Buffer.alloc(64 << 20), '-T2', '--block-size=4MiB');
    let blocks = 0;
    const err = await pipeline(
      Readable.from(chunks(compressed, 4096)),
      new NativeDecoder('xz'),
      new Writable({
        write: (_c: Buffer, _e, cb) => {
          blocks++;
          cb(blocks === 3 ? new Error('disk gone') : null);
        },
      }),
    ).catch((e: unknown) => e);
    expect(String(err)).toMatch(/disk gone/);
    expect(blocks).toBe(3);
  });
});
