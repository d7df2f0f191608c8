// SPDX-License-Identifier: Apache-2.0
/** Runs the built `cdi` binary (dist/cmd/cdi.js) as users do, capturing exit code and output. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// test/helpers in the source tree, or dist-test/test/helpers once compiled.
const UP = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ROOT = basename(UP) === 'dist-test' ? dirname(UP) : UP;
/** The compiled entry; `npm test` builds it first. */
export const CDI_BIN = join(ROOT, 'dist', 'cmd', 'cdi.js');

/** What a run printed and returned. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cdi ARGS` with extra env; never rejects on a non-zero exit. */
export function runCdi(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 60_000,
): Promise<CliRun> {
  if (!existsSync(CDI_BIN)) throw new Error(`${CDI_BIN} is missing: run npm run build:ts first`);
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [CDI_BIN, ...args],
      { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolvePromise({ code, stdout, stderr });
      },
    );
  });
}
