// SPDX-License-Identifier: Apache-2.0
/**
 * The only place that loads the addon (`native/build/Release/cdi_native.node`, built by
 * `npm run build:native`). It is loaded on first use, so modules that only read the format table
 * (the sniffer) work without it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { assertBuiltForThisNode } from './abi.js';
import type { Binding } from './binding.js';

/** Walks up from this module to the directory holding package.json (works from dist/ too). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above the native wrapper');
    dir = parent;
  }
}

let loaded: Binding | undefined;

/** The addon's module object, loaded once. */
export function nativeBinding(): Binding {
  if (loaded === undefined) {
    const require = createRequire(import.meta.url);
    const build = join(packageRoot(), 'native', 'build');
    // A build for another Node's ABI can crash the process on load: refuse it with the fix.
    assertBuiltForThisNode('the native addon (native/build)', build);
    loaded = require(join(build, 'Release', 'cdi_native.node')) as Binding;
  }
  return loaded;
}
