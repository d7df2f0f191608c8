// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import type { CommandContext } from '../common/cli/context.js';
import { controllerMain, parseControllerArgs } from './main.js';

describe('parseControllerArgs', () => {
  it.each([
    { what: 'nothing', argv: [], want: { kubeconfig: undefined, leaderElect: true } },
    {
      what: 'a flag with a value',
      argv: ['--kubeconfig', '/k'],
      want: { kubeconfig: '/k', leaderElect: true },
    },
    {
      what: 'inline value',
      argv: ['--kubeconfig=/k', '--no-leader-elect'],
      want: { kubeconfig: '/k', leaderElect: false },
    },
    { what: 'short namespace', argv: ['-n', 'cdi'], want: { namespace: 'cdi' } },
    { what: 'long namespace', argv: ['--namespace=cdi'], want: { namespace: 'cdi' } },
  ])('$what', ({ argv, want }) => {
    expect(parseControllerArgs(argv)).toMatchObject(want);
  });

  it.each([
    { what: 'unknown flag', argv: ['--frobnicate'], message: 'unknown flag --frobnicate' },
    { what: 'missing value', argv: ['--kubeconfig'], message: 'flag --kubeconfig needs a value' },
    { what: 'a stray argument', argv: ['controller'], message: 'unexpected argument "controller"' },
  ])('rejects $what as a usage error', ({ argv, message }) => {
    expect(() => parseControllerArgs(argv)).toThrow(message);
  });
});

describe('controllerMain', () => {
  it('returns 1 when the kubeconfig cannot be read, logging through the context', async () => {
    const lines: string[] = [];
    const ctx: CommandContext = {
      env: {},
      stdout: process.stdout,
      stderr: process.stderr,
      logger: createLogger({ component: 'controller', write: (l) => void lines.push(l) }),
      signal: new AbortController().signal,
      tmpDir: '/tmp',
      proxy: {},
    };
    expect(await controllerMain(['--kubeconfig', '/nonexistent/kubeconfig'], ctx)).toBe(1);
    expect(lines.join('')).toContain('controller failed');
  });
});
