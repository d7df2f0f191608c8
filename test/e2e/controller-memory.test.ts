// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: the `cdi controller` process the sandbox starts runs with its heap flags and two
 * malloc arenas (cdi re-executes itself with them, same pid), and gives its start's memory back
 * with one memory-reducing collection once its queues are empty.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERB_HEAP_FLAGS, VERB_START_ENV } from '../../cmd/heap-flags.js';
import { repoRoot, startSandbox, type Sandbox } from '../sandbox/index.js';

let sandbox: Sandbox;

beforeAll(async () => {
  if (!existsSync(join(repoRoot(), 'dist', 'controller', 'main.js')))
    throw new Error('dist/ is not built: run npm run build first');
  sandbox = await startSandbox({ controller: true });
}, 120_000);

afterAll(async () => {
  await sandbox.stop();
});

function controllerPid(): number {
  const pid = sandbox.controllerPid;
  if (pid === undefined) throw new Error('the sandbox runs no controller');
  return pid;
}

/** A /proc file of the controller split at NUL bytes. */
async function procList(file: string): Promise<string[]> {
  return (await readFile(`/proc/${controllerPid()}/${file}`, 'utf8')).split('\0');
}

describe('cdi controller memory', () => {
  it('runs with its heap flags and start environment', async () => {
    const argv = await procList('cmdline');
    for (const flag of VERB_HEAP_FLAGS['controller'] ?? []) expect(argv).toContain(flag);
    const env = await procList('environ');
    for (const [name, value] of Object.entries(VERB_START_ENV['controller'] ?? {}))
      expect(env).toContain(`${name}=${value}`);
  });

  it('releases memory once its queues are empty after the start', async () => {
    const log = join(sandbox.dataDir, 'controller.log');
    const released = async (): Promise<boolean> =>
      (await readFile(log, 'utf8')).includes('"msg":"released idle memory"');
    const deadline = Date.now() + 60_000;
    while (!(await released()) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 500));
    expect(await released()).toBe(true);
  }, 90_000);
});
