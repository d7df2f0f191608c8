// SPDX-License-Identifier: Apache-2.0
/**
 * Refuses to load a native addon built with another Node.js's headers. An addon is compiled
 * against the headers of the Node that node-gyp configured it for; loaded by another major line it
 * may crash the process instead of failing. node-gyp records that Node's ABI version
 * (`node_module_version`, what `process.versions.modules` reports) in the build's `config.gypi`,
 * which is compared with the running Node's before `require`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CdiError, ErrorCodes, errorMessage } from '../common/errors.js';

/** The ABI version node-gyp's `config.gypi` records, or undefined when it names none. */
export function builtModuleVersion(configGypi: string): string | undefined {
  return /"node_module_version"\s*:\s*(\d+)/.exec(configGypi)?.[1];
}

/**
 * Throws `CDI_NATIVE_ABI_MISMATCH` unless the addon in `buildDir` (node-gyp's `build/`) was built
 * for `running` (this process's ABI by default).
 */
export function assertBuiltForThisNode(
  name: string,
  buildDir: string,
  running: string = process.versions.modules,
): void {
  const file = join(buildDir, 'config.gypi');
  let built: string | undefined;
  try {
    built = builtModuleVersion(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CdiError(
      ErrorCodes.NativeAbiMismatch,
      `cannot tell which Node.js ${name} was built for (${errorMessage(err)}); rebuild it with \`npm run build:native\``,
      { cause: err },
    );
  }
  if (built !== running) {
    throw new CdiError(
      ErrorCodes.NativeAbiMismatch,
      `${name} was built for Node.js ABI ${built ?? 'unknown'} but this is Node.js ${process.version} (ABI ${running}); rebuild it with \`npm run build:native\` under this Node.js`,
    );
  }
}
