// SPDX-License-Identifier: Apache-2.0
// `npm run fuzz -- --seconds N [--jobs J]`: builds the libFuzzer target with ASan and UBSan,
// generates a seed corpus with qemu-img/qemu-io, and runs the fuzzer for N seconds over the
// corpus plus native/fuzz/regressions. Crashing inputs land in native/fuzz/out/crashes.
// `--regressions` only replays native/fuzz/regressions (must all pass).
/* eslint-disable @typescript-eslint/explicit-function-return-type -- plain JavaScript, no type syntax */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'out');
const corpus = join(out, 'corpus');
const crashes = join(out, 'crashes');
const regressions = join(here, 'regressions');
const bin = join(out, 'qcow2_fuzz');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

function build() {
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
      join(here, '..', 'src', 'qcow2.cc'),
      join(here, 'qcow2_fuzz.cc'),
      '-lz',
      '-lzstd',
      '-o',
      bin,
    ],
    { stdio: 'inherit' },
  );
}

function qemu(args) {
  execFileSync(args[0], args.slice(1), { stdio: 'ignore' });
}

/** Small images covering the format's features (seeds, regenerated each run). */
function seeds() {
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

if (process.argv.includes('--regressions')) {
  if (!existsSync(bin)) build();
  const files = readdirSync(regressions)
    .filter((f) => !f.startsWith('.'))
    .map((f) => join(regressions, f));
  const r = spawnSync(bin, files, { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const seconds = Number(arg('--seconds', '60'));
const jobs = Number(arg('--jobs', '1'));
build();
seeds();
mkdirSync(crashes, { recursive: true });
const r = spawnSync(
  bin,
  [
    `-max_total_time=${seconds}`,
    '-max_len=131072',
    '-rss_limit_mb=1024',
    '-timeout=10',
    `-artifact_prefix=${crashes}/`,
    '-print_final_stats=1',
    ...(jobs > 1 ? [`-jobs=${jobs}`, `-workers=${jobs}`] : []),
    corpus,
    regressions,
  ],
  { stdio: 'inherit', env: { ...process.env, LLVM_PROFILE_FILE: join(out, 'fuzz-%p.profraw') } },
);
process.exit(r.status ?? 1);
