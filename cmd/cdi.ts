#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * The one `cdi` binary (like CDI's `cmd/`): the process edge. It owns `process`: argv, env, the
 * one pair of SIGINT/SIGTERM handlers (aborting the verb's signal), and the exit. Everything
 * else is in cli.ts.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { errorMessage } from '../common/errors.js';
import { ExitCodes, runCli } from './cli.js';
import { missingHeapFlags, missingStartEnv } from './heap-flags.js';

/** package.json's version: next to cmd/ in the source tree, two levels up from dist/cmd/. */
function version(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'cdi-ts' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not this one
    }
  }
  return 'unknown';
}

// A verb that needs V8 heap flags or start-time environment gets them before it loads: the
// process re-executes itself with them (same pid). Node 22 has no execve; the verb then runs with
// the defaults.
const heapFlags = missingHeapFlags(process.argv[2], process.execArgv, process.env['NODE_OPTIONS']);
const startEnv = missingStartEnv(process.argv[2], process.env);
if ((heapFlags.length > 0 || Object.keys(startEnv).length > 0) && process.execve !== undefined) {
  process.execve(
    process.execPath,
    [process.execPath, ...heapFlags, ...process.execArgv, ...process.argv.slice(1)],
    { ...process.env, ...startEnv },
  );
}

const abort = new AbortController();
let interrupted = false;
// `once`: a second Ctrl-C gets Node's default handling and ends the process at once.
process.once('SIGINT', () => {
  interrupted = true;
  abort.abort(new Error('received SIGINT'));
});
process.once('SIGTERM', () => abort.abort(new Error('received SIGTERM')));

/** How long the exit waits for stdout to take what was written before it. */
const STDOUT_FLUSH_MS = 5000;

// Exit explicitly once the verb is done: idle keep-alive sockets or timers of a library must not
// keep a finished import (or a pod) alive. Nor may a stdout pipe nobody drains: the exit waits
// for the last lines to flush, but not for ever (an importer that had written its termination
// message once stayed Running for minutes behind a full log pipe).
function exit(code: number): void {
  setTimeout(() => process.exit(code), STDOUT_FLUSH_MS);
  process.stdout.write('', () => process.exit(code));
}

runCli({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  tmpDir: tmpdir(),
  version: version(),
  signal: abort.signal,
  interrupted: () => interrupted,
}).then(exit, (err: unknown) => {
  process.stderr.write(`cdi: ${errorMessage(err)}\n`);
  exit(ExitCodes.Failure);
});
