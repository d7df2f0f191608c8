// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { missingHeapFlags, missingStartEnv, VERB_HEAP_FLAGS } from './heap-flags.js';

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
      want: ['--expose-gc'],
    },
    {
      what: "an operator's own value in NODE_OPTIONS wins",
      verb: 'controller',
      execArgv: [],
      nodeOptions: '--enable-source-maps  --max-semi-space-size=8 --expose_gc',
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

describe('missingStartEnv', () => {
  it.each<{
    what: string;
    verb?: string;
    env: Record<string, string | undefined>;
    want: Record<string, string>;
  }>([
    { what: 'a verb without settings', verb: 'import', env: {}, want: {} },
    { what: 'no verb', env: {}, want: {} },
    {
      what: 'the controller started plainly',
      verb: 'controller',
      env: { PATH: '/bin' },
      want: { MALLOC_ARENA_MAX: '2' },
    },
    {
      what: 'the controller re-executed with them',
      verb: 'controller',
      env: { MALLOC_ARENA_MAX: '2' },
      want: {},
    },
    {
      what: "an operator's own value wins",
      verb: 'controller',
      env: { MALLOC_ARENA_MAX: '8' },
      want: {},
    },
    { what: 'even an empty one', verb: 'controller', env: { MALLOC_ARENA_MAX: '' }, want: {} },
  ])('$what', ({ verb, env, want }) => {
    expect(missingStartEnv(verb, env)).toEqual(want);
  });
});
