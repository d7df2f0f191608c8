// SPDX-License-Identifier: Apache-2.0
/**
 * A client nobody here wrote: Debian's python3-kubernetes (the official Python client) lists
 * and watches DataVolumes, creates a namespace, and patches with the strategic merge patch and
 * JSON merge patch content types (python/client_check.py prints what it saw).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, startSandbox, type Sandbox } from '../sandbox/index.js';

/** Debian's interpreter, where python3-kubernetes is installed (not a pyenv one on PATH). */
const PYTHON = process.env['CDI_PYTHON'] ?? '/usr/bin/python3';
let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await startSandbox();
});

afterAll(async () => {
  await sandbox.stop();
});

describe('the official Python client', () => {
  it('lists, watches, creates and patches', async () => {
    const script = join(repoRoot(), 'test', 'e2e', 'python', 'client_check.py');
    let stdout: string;
    try {
      ({ stdout } = await promisify(execFile)(PYTHON, [script], {
        env: { ...process.env, KUBECONFIG: sandbox.kubeconfigPath },
        timeout: 120_000,
      }));
    } catch (err) {
      const e = err as { stderr?: string };
      throw new Error(
        `${PYTHON} ${script} failed (is python3-kubernetes installed? scripts/install-debian-deps.sh):\n${e.stderr ?? String(err)}`,
        { cause: err },
      );
    }
    const seen = JSON.parse(stdout) as Record<string, unknown>;
    expect(seen).toEqual({
      listed: ['py-dv'],
      watched: [['MODIFIED', 'py-dv', 'merge']],
      namespace: 'py-ns',
      namespaceListed: true,
      strategic: [
        ['a', 'busybox:2', ['sleep', '1']],
        ['b', 'busybox', null],
      ],
      mergeLabels: { tier: 'x' },
    });
  });
});
