// SPDX-License-Identifier: Apache-2.0
/** The `--name value` options of the build scripts. */
import process from 'node:process';

/** The value after `--name` on the command line, or `fallback` when the option is absent. */
export function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = process.argv[i + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`--${name} needs a value`);
  return value;
}
