// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { main, parseControllerArgs } from './main.js';

describe('parseControllerArgs', () => {
  it.each([
    { what: 'nothing', argv: [], kubeconfig: undefined, leaderElect: true },
    {
      what: 'verb then flag',
      argv: ['controller', '--kubeconfig', '/k'],
      kubeconfig: '/k',
      leaderElect: true,
    },
    {
      what: 'inline value',
      argv: ['--kubeconfig=/k', '--no-leader-elect'],
      kubeconfig: '/k',
      leaderElect: false,
    },
  ])('$what', ({ argv, kubeconfig, leaderElect }) => {
    expect(parseControllerArgs(argv)).toMatchObject({ kubeconfig, leaderElect });
  });

  it.each([
    { argv: ['-v', '1'], level: 'info' },
    { argv: ['-v=3'], level: 'debug' },
    { argv: ['--v', '5'], level: 'debug' },
    { argv: ['--v=0'], level: 'info' },
  ])('klog verbosity $argv sets level $level', ({ argv, level }) => {
    expect(parseControllerArgs(argv).logLevel).toBe(level);
  });

  it.each([
    { what: 'unknown flag', argv: ['--frobnicate'], message: 'unknown argument' },
    { what: 'missing value', argv: ['--kubeconfig'], message: '--kubeconfig needs a value' },
    { what: 'bad log level', argv: ['--log-level', 'loud'], message: '--log-level must be' },
    { what: 'bad verbosity', argv: ['-v', 'high'], message: '-v must be a number' },
  ])('rejects $what', ({ argv, message }) => {
    expect(() => parseControllerArgs(argv)).toThrow(message);
  });

  it('main returns 2 on bad arguments and 1 when the kubeconfig cannot be read', async () => {
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = () => true;
    try {
      expect(await main(['--bogus'])).toBe(2);
      expect(await main(['--kubeconfig', '/nonexistent/kubeconfig', '--log-level', 'error'])).toBe(
        1,
      );
    } finally {
      process.stderr.write = write;
    }
  });
});
