// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { takeGlobalFlags } from './args.js';

describe('takeGlobalFlags', () => {
  it.each([
    { argv: ['-v'], verbose: true, logLevel: undefined, rest: [] },
    { argv: ['--verbose', 'x'], verbose: true, logLevel: undefined, rest: ['x'] },
    // klog's verbosity, as CDI's components take it: 3 and above log debug lines.
    { argv: ['-v', '1'], verbose: false, logLevel: 'info', rest: [] },
    { argv: ['-v=3'], verbose: false, logLevel: 'debug', rest: [] },
    {
      argv: ['--v', '5', '--kubeconfig', 'k'],
      verbose: false,
      logLevel: 'debug',
      rest: ['--kubeconfig', 'k'],
    },
    { argv: ['--v=0'], verbose: false, logLevel: 'info', rest: [] },
    { argv: ['--log-level', 'warn', 'a'], verbose: false, logLevel: 'warn', rest: ['a'] },
    { argv: ['-h'], verbose: false, logLevel: undefined, rest: [], help: true },
  ])('$argv', ({ argv, verbose, logLevel, rest, help }) => {
    expect(takeGlobalFlags(argv)).toEqual({ help: help ?? false, verbose, logLevel, rest });
  });
});
