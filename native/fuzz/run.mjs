// SPDX-License-Identifier: Apache-2.0
// `npm run fuzz -- --seconds N [--jobs J] [--target qcow2|image|vhdx|diff-qcow2|diff-image|all]`:
// builds the libFuzzer targets with ASan and UBSan (qcow2_fuzz over src/qcow2.cc; image_fuzz over
// the VDI/VHD/VMDK/VHDX cores in src/image_format.cc; diff_fuzz, the differential target, over
// both), generates a seed corpus per target with qemu-img/qemu-io, and runs each chosen target for
// N seconds over its corpus plus native/fuzz/regressions. Crashing inputs land in
// native/fuzz/out/crashes. `--regressions` only replays native/fuzz/regressions through every
// target (must all pass). `--differential` compares the TypeScript converters and qemu-img over
// the diff corpora (see differential() below).
/* eslint-disable @typescript-eslint/explicit-function-return-type -- plain JavaScript, no type syntax */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'out');
const crashes = join(out, 'crashes');
const regressions = join(here, 'regressions');

/** The targets: sources of the core, seed generator, and the largest input worth trying. */
const CORE = ['qcow2.cc', 'host_claims.cc'];
const TARGETS = {
  qcow2: { harness: 'qcow2', sources: CORE, seeds: qcow2Seeds, maxLen: 131072 },
  image: {
    harness: 'image',
    sources: [...CORE, 'image_format.cc'],
    seeds: imageSeeds,
    maxLen: 262144,
  },
  // The image harness again, with VHDX seeds: its 1 MiB-aligned regions need inputs of 5 MiB.
  vhdx: {
    harness: 'image',
    sources: [...CORE, 'image_format.cc'],
    seeds: vhdxSeeds,
    maxLen: 5373952,
  },
  // Differential: random-access order vs stream order vs stream behind gzip (diff_fuzz.cc).
  'diff-qcow2': {
    harness: 'diff',
    sources: [...CORE, 'image_format.cc'],
    seeds: (corpus) => {
      qcow2Seeds(corpus);
      sharedQcow2Seeds(corpus);
    },
    maxLen: 131072,
  },
  'diff-image': {
    harness: 'diff',
    sources: [...CORE, 'image_format.cc'],
    seeds: (corpus) => {
      imageSeeds(corpus);
      sharedImageSeeds(corpus);
    },
    maxLen: 262144,
  },
};
const binOf = (name) => join(out, `${TARGETS[name].harness}_fuzz`);
const corpusOf = (name) => join(out, name === 'qcow2' ? 'corpus' : `corpus-${name}`);

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

function build(name) {
  mkdirSync(out, { recursive: true });
  execFileSync(
    'clang++',
    [
      '-std=c++17',
      '-g',
      '-O1',
      '-fsanitize=fuzzer,address,undefined',
      '-fno-sanitize-recover=all',
      '-fprofile-instr-generate',
      '-fcoverage-mapping',
      ...TARGETS[name].sources.map((f) => join(here, '..', 'src', f)),
      join(here, `${TARGETS[name].harness}_fuzz.cc`),
      '-lz',
      '-lzstd',
      '-o',
      binOf(name),
    ],
    { stdio: 'inherit' },
  );
}

function qemu(args) {
  execFileSync(args[0], args.slice(1), { stdio: 'ignore' });
}

/** Small qcow2 images covering the format's features (seeds, regenerated each run). */
function qcow2Seeds(corpus) {
  rmSync(corpus, { recursive: true, force: true });
  mkdirSync(corpus, { recursive: true });
  const tmp = join(out, 'seed-tmp');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const rows = [
    ['v2-512', 'compat=0.10,cluster_size=512', ''],
    ['v3-512', 'compat=1.1,cluster_size=512', ''],
    ['v3-4k', 'compat=1.1,cluster_size=4096', ''],
    ['v3-4k-zlib', 'compat=1.1,cluster_size=4096', 'zlib'],
    ['v3-4k-zstd', 'compat=1.1,cluster_size=4096,compression_type=zstd', 'zstd'],
    ['v3-16k-ext', 'compat=1.1,cluster_size=16384,extended_l2=on', ''],
    ['v2-512-zlib', 'compat=0.10,cluster_size=512', 'zlib'],
  ];
  for (const [name, opts, compress] of rows) {
    const base = join(tmp, `${name}.base.qcow2`);
    const img = join(corpus, `${name}.qcow2`);
    qemu(['qemu-img', 'create', '-f', 'qcow2', '-o', opts, base, '256K']);
    qemu([
      'qemu-io',
      '-c',
      'write -P 0xab 0 5k',
      '-c',
      'write -z 8k 4k',
      '-c',
      'write -P 0x11 200k 3k',
      '-c',
      'discard 0 512',
      base,
    ]);
    if (compress !== '') {
      qemu(['qemu-img', 'convert', '-c', '-O', 'qcow2', '-o', opts, base, img]);
    } else {
      qemu(['cp', base, img]);
    }
  }
  qemu([
    'qemu-img',
    'create',
    '-u',
    '-f',
    'qcow2',
    '-o',
    'cluster_size=512',
    '-b',
    'base.img',
    '-F',
    'raw',
    join(corpus, 'backing.qcow2'),
    '64K',
  ]);
  qemu([
    'qemu-img',
    'create',
    '-f',
    'qcow2',
    '-o',
    'cluster_size=512',
    join(corpus, 'snap.qcow2'),
    '64K',
  ]);
  qemu(['qemu-io', '-c', 'write -P 0x5a 0 2k', join(corpus, 'snap.qcow2')]);
  qemu(['qemu-img', 'snapshot', '-c', 's1', join(corpus, 'snap.qcow2')]);
  rmSync(tmp, { recursive: true, force: true });
}

/** Writes `name` into `corpus` as `base` with `patch` applied to a copy. */
function patched(corpus, name, base, patch) {
  const b = Buffer.from(base);
  patch(b);
  writeFileSync(join(corpus, name), b);
}

/**
 * qcow2 seeds with shared or overlapping metadata (issue 17): an L2 table named by two L1
 * entries, L2 tables on the header, L1, refcount table and block, data on metadata, two entries
 * naming one data or compressed cluster, a snapshot table on an L2 table.
 */
function sharedQcow2Seeds(corpus) {
  const tmp = join(out, 'seed-tmp');
  mkdirSync(tmp, { recursive: true });
  const make = (name, opts, compress) => {
    const base = join(tmp, `${name}.base.qcow2`);
    const img = join(tmp, `${name}.qcow2`);
    qemu(['qemu-img', 'create', '-f', 'qcow2', '-o', opts, base, '2M']);
    qemu(['qemu-io', '-c', 'write -P 0xab 0 6k', '-c', 'write -P 0x11 1M 3k', base]);
    if (compress) qemu(['qemu-img', 'convert', '-c', '-O', 'qcow2', '-o', opts, base, img]);
    else qemu(['cp', base, img]);
    return readFileSync(img);
  };
  // 512-byte clusters: one L2 table covers 32 KiB, so 2 MiB needs 64 L1 entries.
  for (const [name, b] of [
    ['plain', make('shared-plain', 'compat=1.1,cluster_size=512', false)],
    ['zlib', make('shared-zlib', 'compat=1.1,cluster_size=512', true)],
  ]) {
    const l1 = Number(b.readBigUInt64BE(40));
    const reft = Number(b.readBigUInt64BE(48));
    const l2 = (i) => b.readBigUInt64BE(l1 + i * 8) & 0x00fffffffffffe00n;
    const last = b.readUInt32BE(36) - 1;
    const first = Number(l2(0));
    const set64 = (off, v) => (x) => x.writeBigUInt64BE(BigInt(v), off);
    const seeds = {
      'l1-shared-l2': set64(l1 + last * 8, (1n << 63n) | l2(0)),
      'l2-on-l1': set64(l1 + last * 8, (1n << 63n) | BigInt(l1)),
      'l2-on-refcount-table': set64(l1 + last * 8, (1n << 63n) | BigInt(reft)),
      'l2-on-refcount-block': set64(l1 + last * 8, (1n << 63n) | (b.readBigUInt64BE(reft) & ~511n)),
      'l2-entries-shared': set64(first + 8, b.readBigUInt64BE(first)),
      'data-on-l2': set64(first, (1n << 63n) | BigInt(first)),
      'snapshot-on-l2': (x) => {
        x.writeUInt32BE(1, 60);
        x.writeBigUInt64BE(BigInt(first), 64);
      },
      'refcount-block-on-l2': set64(reft + 8, first),
    };
    for (const [seed, patch] of Object.entries(seeds)) {
      patched(corpus, `shared-${name}-${seed}.qcow2`, b, patch);
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}

/** Block-map seeds with duplicate or overlapping BAT, grain-table and grain-directory entries. */
function sharedImageSeeds(corpus) {
  const vhd = readFileSync(join(corpus, 'vhd-tiny.vhd'));
  const bat = Number(vhd.readBigUInt64BE(512 + 16));
  patched(corpus, 'shared-vhd-bat-dup.vhd', vhd, (x) =>
    x.writeUInt32BE(x.readUInt32BE(bat), bat + 12),
  );
  patched(corpus, 'shared-vhd-bat-overlap.vhd', vhd, (x) =>
    x.writeUInt32BE(x.readUInt32BE(bat) + 1, bat + 12),
  );
  patched(corpus, 'shared-vhd-block-on-bat.vhd', vhd, (x) => x.writeUInt32BE(bat / 512, bat));
  const vdi = readFileSync(join(corpus, 'vdi-static.vdi'));
  const bmap = vdi.readUInt32LE(340);
  patched(corpus, 'shared-vdi-bmap-dup.vdi', vdi, (x) => x.writeUInt32LE(0, bmap + 4));
  const vmdk = readFileSync(join(corpus, 'vmdk-sparse.vmdk'));
  const gd = Number(vmdk.readBigUInt64LE(56)) * 512;
  const gt = vmdk.readUInt32LE(gd) * 512;
  patched(corpus, 'shared-vmdk-gt-dup.vmdk', vmdk, (x) =>
    x.writeUInt32LE(x.readUInt32LE(gt), gt + 4),
  );
  patched(corpus, 'shared-vmdk-grain-on-gd.vmdk', vmdk, (x) => x.writeUInt32LE(gd / 512, gt));
  patched(corpus, 'shared-vmdk-gt-on-gd.vmdk', vmdk, (x) => x.writeUInt32LE(gd / 512, gd));
}

/** A tiny dynamic VHD with 4 KiB blocks (qemu always writes 2 MiB blocks, too big to fuzz). */
function tinyVhd(path) {
  const blockSize = 4096;
  const size = 64 * 1024;
  const entries = size / blockSize;
  const footer = Buffer.alloc(512);
  footer.write('conectix', 0, 'latin1');
  footer.writeUInt32BE(2, 8);
  footer.writeUInt32BE(0x10000, 12);
  footer.writeBigUInt64BE(512n, 16);
  footer.write('win ', 28, 'latin1');
  footer.writeBigUInt64BE(BigInt(size), 40);
  footer.writeBigUInt64BE(BigInt(size), 48);
  footer.writeUInt16BE(4, 56);
  footer[58] = 4;
  footer[59] = 8;
  footer.writeUInt32BE(3, 60);
  let sum = 0;
  for (const b of footer) sum += b;
  footer.writeUInt32BE(~sum >>> 0, 64);
  const dyn = Buffer.alloc(1024);
  dyn.write('cxsparse', 0, 'latin1');
  dyn.writeBigUInt64BE(0xffffffffffffffffn, 8);
  dyn.writeBigUInt64BE(1536n, 16);
  dyn.writeUInt32BE(0x10000, 24);
  dyn.writeUInt32BE(entries, 28);
  dyn.writeUInt32BE(blockSize, 32);
  const bat = Buffer.alloc(512, 0xff);
  const blocks = [];
  let sector = 4;
  for (const i of [0, 3, 15]) {
    bat.writeUInt32BE(sector, i * 4);
    const block = Buffer.alloc(512 + blockSize, i + 1);
    block.fill(0xff, 0, 512);
    blocks.push(block);
    sector += block.length / 512;
  }
  writeFileSync(path, Buffer.concat([footer, dyn, bat, ...blocks, footer]));
}

/** Small VDI, VHD and VMDK images (seeds, regenerated each run). */
function imageSeeds(corpus) {
  rmSync(corpus, { recursive: true, force: true });
  mkdirSync(corpus, { recursive: true });
  const tmp = join(out, 'seed-tmp');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const raw = join(tmp, 'base.raw');
  qemu(['qemu-img', 'create', '-q', '-f', 'raw', raw, '256K']);
  qemu(['qemu-io', '-f', 'raw', '-c', 'write -P 0xab 0 5k', '-c', 'write -P 0x11 130k 3k', raw]);
  const rows = [
    ['vdi-dynamic.vdi', 'vdi', 'static=off'],
    ['vdi-static.vdi', 'vdi', 'static=on'],
    ['vhd-fixed.vhd', 'vpc', 'subformat=fixed'],
    ['vmdk-sparse.vmdk', 'vmdk', 'subformat=monolithicSparse'],
    ['vmdk-zeroed.vmdk', 'vmdk', 'subformat=monolithicSparse,zeroed_grain=on'],
    ['vmdk-stream.vmdk', 'vmdk', 'subformat=streamOptimized'],
  ];
  for (const [name, fmt, opts] of rows) {
    qemu(['qemu-img', 'convert', '-f', 'raw', '-O', fmt, '-o', opts, raw, join(corpus, name)]);
  }
  qemu(['qemu-io', '-f', 'vmdk', '-c', 'write -z 0 64k', join(corpus, 'vmdk-zeroed.vmdk')]);
  tinyVhd(join(corpus, 'vhd-tiny.vhd'));
  rmSync(tmp, { recursive: true, force: true });
}

/** CRC-32C, as VHDX checksums its headers and region tables. */
function crc32c(buf) {
  let crc = 0xffffffff;
  for (const b of buf) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return ~crc >>> 0;
}

/** GUID text to the bytes VHDX stores (first three fields little-endian). */
function guid(text) {
  const h = Buffer.from(text.replace(/-/g, ''), 'hex');
  return Buffer.concat([
    Buffer.from(h.subarray(0, 4)).reverse(),
    Buffer.from(h.subarray(4, 6)).reverse(),
    Buffer.from(h.subarray(6, 8)).reverse(),
    h.subarray(8),
  ]);
}

/**
 * A compact VHDX (5 MiB: headers, BAT at 1 MiB, metadata at 2 MiB, one 1 MiB block at 3 MiB,
 * log at 4 MiB);
 * qemu's smallest is about 10 MiB. `fixed` marks the blocks as "leave allocated".
 */
function tinyVhdx(path, fixed) {
  const MiB = 1 << 20;
  const img = Buffer.alloc(5 * MiB);
  img.write('vhdxfile', 0, 'latin1');
  for (const [off, seq] of [
    [64 * 1024, 1n],
    [128 * 1024, 2n],
  ]) {
    const h = img.subarray(off, off + 4096);
    h.write('head', 0, 'latin1');
    h.writeBigUInt64LE(seq, 8);
    h.fill(0x11, 16, 48);
    h.writeUInt16LE(1, 66);
    h.writeUInt32LE(MiB, 68);
    h.writeBigUInt64LE(BigInt(4 * MiB), 72);
    h.writeUInt32LE(crc32c(h), 4);
  }
  for (const off of [192 * 1024, 256 * 1024]) {
    const rt = img.subarray(off, off + 64 * 1024);
    rt.write('regi', 0, 'latin1');
    rt.writeUInt32LE(2, 8);
    guid('2dc27766-f623-4200-9d64-115e9bfd4a08').copy(rt, 16);
    rt.writeBigUInt64LE(BigInt(MiB), 32);
    rt.writeUInt32LE(MiB, 40);
    rt.writeUInt32LE(1, 44);
    guid('8b7ca206-4790-4b9a-b8fe-575f050f886e').copy(rt, 48);
    rt.writeBigUInt64LE(BigInt(2 * MiB), 64);
    rt.writeUInt32LE(MiB, 72);
    rt.writeUInt32LE(1, 76);
    rt.writeUInt32LE(crc32c(rt), 4);
  }
  const bat = img.subarray(MiB, 2 * MiB);
  bat.writeBigUInt64LE((3n << 20n) | 6n, 0);
  bat.writeBigUInt64LE(2n, 8);
  const meta = img.subarray(2 * MiB, 3 * MiB);
  meta.write('metadata', 0, 'latin1');
  meta.writeUInt16LE(5, 10);
  const items = [
    ['caa16737-fa36-4d43-b3b6-33f0aa44e76b', 8, 4],
    ['2fa54224-cd1b-4876-b211-5dbed83bf4b8', 8, 6],
    ['8141bf1d-a96f-4709-ba47-f233a8faab5f', 4, 6],
    ['cda348c7-445d-4471-9cc9-e9885251c556', 4, 6],
    ['beca12ab-b2e6-4523-93ef-c309e000c746', 16, 6],
  ];
  let data = 64 * 1024;
  items.forEach(([id, length, flags], i) => {
    const e = 32 + i * 32;
    guid(id).copy(meta, e);
    meta.writeUInt32LE(data + i * 16, e + 16);
    meta.writeUInt32LE(length, e + 20);
    meta.writeUInt32LE(flags, e + 24);
  });
  meta.writeUInt32LE(MiB, data);
  meta.writeUInt32LE(fixed ? 1 : 0, data + 4);
  meta.writeBigUInt64LE(BigInt(3 * MiB), data + 16);
  meta.writeUInt32LE(512, data + 32);
  meta.writeUInt32LE(4096, data + 48);
  meta.fill(0x33, data + 64, data + 80);
  img.fill(0xab, 3 * MiB, 3 * MiB + 5000);
  writeFileSync(path, img);
}

/** Compact VHDX images (seeds, regenerated each run). */
function vhdxSeeds(corpus) {
  rmSync(corpus, { recursive: true, force: true });
  mkdirSync(corpus, { recursive: true });
  tinyVhdx(join(corpus, 'dynamic.vhdx'), false);
  tinyVhdx(join(corpus, 'fixed.vhdx'), true);
}

const only = arg('--target', 'all');
const names = only === 'all' ? Object.keys(TARGETS) : [only];
for (const name of names) {
  if (TARGETS[name] === undefined) {
    process.stderr.write(`unknown target ${name} (${Object.keys(TARGETS).join(', ')}, all)\n`);
    process.exit(2);
  }
}

/** A small seeded generator for the differential mutator (reproducible with --seed). */
function rng(seed) {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * n;
  };
}

/** Mutates a copy of `b`: byte sets and aligned word copies (the latter make shared tables). */
function mutate(b, rand) {
  const x = Buffer.from(b);
  const n = 1 + Math.floor(rand(4));
  for (let k = 0; k < n && x.length >= 16; k++) {
    const kind = Math.floor(rand(3));
    if (kind === 0) {
      x[Math.floor(rand(x.length))] = Math.floor(rand(256));
    } else {
      const w = kind === 1 ? 8 : 4;
      const from = Math.floor(rand(x.length / w - 1)) * w;
      const to = Math.floor(rand(x.length / w - 1)) * w;
      x.copy(x, to, from, from + w);
    }
  }
  return x;
}

/**
 * `--differential [--seconds N] [--seed S]`: every corpus entry of the diff targets and every
 * regression, then mutants of them for N seconds, go through the TypeScript converters (random
 * access, stream in random chunks, stream behind gzip; dist-test/native/test-helpers/three-ways.js)
 * and, when those accept, through `qemu-img convert -O raw`. Disagreeing images are copied to
 * native/fuzz/regressions (diff-*), where fuzz-regressions.test.ts replays them.
 */
async function differential() {
  const root = join(here, '..', '..');
  // The helper is test support (dist-test/), built with the product modules it imports.
  execFileSync('npx', ['tsc', '-p', 'tsconfig.test-support.json'], { cwd: root, stdio: 'inherit' });
  const helpers = join(root, 'dist-test', 'native', 'test-helpers', 'three-ways.js');
  const { convertThreeWays, oneVerdict, sniffFormat } = await import(helpers);
  const work = join(out, 'differential');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const inputs = [];
  for (const name of ['diff-qcow2', 'diff-image']) {
    if (!existsSync(corpusOf(name))) TARGETS[name].seeds(corpusOf(name));
    for (const f of readdirSync(corpusOf(name))) inputs.push(join(corpusOf(name), f));
  }
  for (const f of readdirSync(regressions))
    if (!f.startsWith('.')) inputs.push(join(regressions, f));
  const stats = { inputs: 0, mutants: 0, skipped: 0, accepted: 0, refused: 0, qemuCompared: 0 };
  const findings = [];
  const check = async (bytes, label, seed) => {
    const format = sniffFormat(bytes);
    if (format === undefined) {
      stats.skipped++;
      return;
    }
    const path = join(work, `input.${format}`);
    writeFileSync(path, bytes);
    const outcomes = await convertThreeWays(format, path, work, { seed });
    let problem;
    if (!oneVerdict(outcomes)) {
      problem = `converters disagree: ${JSON.stringify(outcomes)}`;
    } else if ('sha256' in outcomes[0]) {
      stats.accepted++;
      const ref = join(work, 'qemu.raw');
      rmSync(ref, { force: true });
      const q = spawnSync(
        'qemu-img',
        ['convert', '-f', format === 'vhd' ? 'vpc' : format, '-O', 'raw', path, ref],
        { timeout: 30_000, stdio: 'ignore' },
      );
      if (q.status === 0) {
        stats.qemuCompared++;
        const sha = createHash('sha256').update(readFileSync(ref)).digest('hex');
        if (sha !== outcomes[0].sha256) problem = 'the converters agree but differ from qemu-img';
      }
    } else {
      stats.refused++;
    }
    if (problem !== undefined) {
      const id = createHash('sha256').update(bytes).digest('hex').slice(0, 12);
      const keep = join(regressions, `diff-${id}-${format}.bin`);
      if (!existsSync(keep)) writeFileSync(keep, bytes);
      findings.push({ input: label, kept: keep, problem });
      process.stdout.write(`FINDING ${label}: ${problem}\n`);
    }
  };
  for (const [i, input] of inputs.entries()) {
    stats.inputs++;
    await check(readFileSync(input), input, i);
  }
  const seconds = Number(arg('--seconds', '0'));
  const rand = rng(Number(arg('--seed', '1')));
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until && inputs.length > 0) {
    const input = inputs[Math.floor(rand(inputs.length))];
    stats.mutants++;
    await check(mutate(readFileSync(input), rand), `mutant of ${input}`, stats.mutants);
  }
  rmSync(work, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify({ ...stats, findings: findings.length }, null, 2)}\n`);
  return findings.length === 0 ? 0 : 1;
}

if (process.argv.includes('--differential')) {
  process.exit(await differential());
}

if (process.argv.includes('--regressions')) {
  const files = readdirSync(regressions)
    .filter((f) => !f.startsWith('.'))
    .map((f) => join(regressions, f));
  for (const name of names) {
    if (!existsSync(binOf(name))) build(name);
    const r = spawnSync(binOf(name), files, { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  process.exit(0);
}

const seconds = Number(arg('--seconds', '60'));
const jobs = Number(arg('--jobs', '1'));
mkdirSync(crashes, { recursive: true });
for (const name of names) {
  build(name);
  TARGETS[name].seeds(corpusOf(name));
  const r = spawnSync(
    binOf(name),
    [
      `-max_total_time=${seconds}`,
      `-max_len=${TARGETS[name].maxLen}`,
      '-rss_limit_mb=1024',
      '-timeout=10',
      `-artifact_prefix=${crashes}/`,
      '-print_final_stats=1',
      ...(jobs > 1 ? [`-jobs=${jobs}`, `-workers=${jobs}`] : []),
      corpusOf(name),
      regressions,
    ],
    {
      stdio: 'inherit',
      env: { ...process.env, LLVM_PROFILE_FILE: join(out, `fuzz-${name}-%p.profraw`) },
    },
  );
  if (r.status !== 0) process.exit(r.status ?? 1);
}
process.exit(0);
