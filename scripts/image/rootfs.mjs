// SPDX-License-Identifier: Apache-2.0
// The image's base layer: a Debian bookworm root filesystem made by mmdebstrap from the packages
// in deploy/images/runtime-packages, as a tar. mmdebstrap takes minutes, so the tar is cached under
// a key of everything that shapes it (suite, variant, mirrors, packages, path filters).
/* eslint-disable @typescript-eslint/explicit-function-return-type -- plain JavaScript, no type syntax */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

const SUITE = 'bookworm';
const VARIANT = 'minbase';
const MIRRORS = [
  'deb http://deb.debian.org/debian bookworm main',
  'deb http://deb.debian.org/debian bookworm-updates main',
  'deb http://deb.debian.org/debian-security bookworm-security main',
];
// What debian:bookworm-slim leaves out too: documentation (but the copyright files), manuals,
// translations.
const DPKG_OPTS = [
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/locale/*',
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
];

/** The package names of a runtime-packages file (comments and blank lines skipped). */
export function readPackageList(file) {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');
}

/** The cache key of a root filesystem of these packages. */
export function rootfsKey(packages) {
  const recipe = JSON.stringify({
    SUITE,
    VARIANT,
    MIRRORS,
    DPKG_OPTS,
    packages: [...packages].sort(),
  });
  return createHash('sha256').update(recipe).digest('hex').slice(0, 16);
}

/**
 * Returns the path of the root filesystem tar for `packages`, running mmdebstrap only when the
 * cache holds none. `epoch` (seconds) stamps file times, for reproducible output.
 */
export function buildRootfs({ packages, cacheDir, epoch, log }) {
  const out = join(cacheDir, `rootfs-${SUITE}-${rootfsKey(packages)}.tar`);
  if (existsSync(out)) {
    log(`rootfs: cached ${out}`);
    return out;
  }
  mkdirSync(cacheDir, { recursive: true });
  const partial = `${out}.part`;
  rmSync(partial, { force: true });
  log(`rootfs: mmdebstrap --variant=${VARIANT} ${SUITE} with ${packages.join(' ')}`);
  execFileSync(
    'mmdebstrap',
    [
      '--quiet',
      `--variant=${VARIANT}`,
      '--format=tar',
      `--include=${packages.join(',')}`,
      ...DPKG_OPTS.map((opt) => `--dpkgopt=${opt}`),
      SUITE,
      partial,
      ...MIRRORS,
    ],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) },
    },
  );
  renameSync(partial, out);
  return out;
}
