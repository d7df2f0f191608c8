// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { missingHeapFlags, VERB_HEAP_FLAGS } from './heap-flags.js';

const CONTROLLER = [...(VERB_HEAP_FLAGS['controller'] ?? [])];

describe('missingHeapFlags', () => {
  it.each<{
    what: string;
    verb?: string;
    execArgv: string[];
    nodeOptions?: string;
    want: string[];
  }>([
    { what: 'a verb without flags', verb: 'import', execArgv: [], want: [] },
    { what: 'no verb', execArgv: [], want: [] },
    {
      what: 'the upload proxy started plainly',
      verb: 'uploadproxy',
      execArgv: [],
      want: ['--max-semi-space-size=1'],
    },
    { what: 'the controller started plainly', verb: 'controller', execArgv: [], want: CONTROLLER },
    {
      what: 'the controller re-executed with them',
      verb: 'controller',
      execArgv: [...CONTROLLER, '--cpu-prof'],
      want: [],
    },
    {
      what: "an operator's own value on the command line wins",
      verb: 'controller',
      execArgv: ['--max_semi_space_size=16'],
      want: [],
    },
    {
      what: "an operator's own value in NODE_OPTIONS wins",
      verb: 'controller',
      execArgv: [],
      nodeOptions: '--enable-source-maps  --max-semi-space-size=8',
      want: [],
    },
    {
      what: 'other NODE_OPTIONS do not count',
      verb: 'controller',
      execArgv: [],
      nodeOptions: '--enable-source-maps',
      want: CONTROLLER,
    },
  ])('$what', ({ verb, execArgv, nodeOptions, want }) => {
    expect(missingHeapFlags(verb, execArgv, nodeOptions)).toEqual(want);
  });
});
