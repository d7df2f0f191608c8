// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import type { EventAction } from './actions.js';
import {
  COMBINED_PREFIX,
  DUPLICATE_WINDOW_MS,
  MAX_SIMILAR,
  SIMILAR_WINDOW_MS,
  correlate,
  newCorrelatorState,
} from './event-correlator.js';

function event(message: string, uid = 'u', reason = 'ErrImportFailed'): EventAction {
  return {
    kind: 'event',
    target: { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: 'ns', name: 'c', uid },
    type: 'Warning',
    reason,
    message,
  };
}

/** Feeds `(time, event)` pairs through one state; returns the messages written (or '-'). */
function run(steps: readonly (readonly [number, EventAction])[]): string[] {
  const state = newCorrelatorState();
  return steps.map(([t, e]) => correlate(state, e, t)?.message ?? '-');
}

const manyDistinct = (n: number, at = 0): [number, EventAction][] =>
  Array.from({ length: n }, (_, i) => [at + i, event(`attempt ${i}`)]);

describe('correlate', () => {
  it.each<{ what: string; steps: [number, EventAction][]; want: string[] }>([
    {
      what: 'the same event twice within the window: written once',
      steps: [
        [0, event('a')],
        [DUPLICATE_WINDOW_MS - 1, event('a')],
      ],
      want: ['a', '-'],
    },
    {
      what: 'the same event after the window: written again',
      steps: [
        [0, event('a')],
        [DUPLICATE_WINDOW_MS, event('a')],
      ],
      want: ['a', 'a'],
    },
    {
      what: 'the same text about another object: written',
      steps: [
        [0, event('a')],
        [1, event('a', 'other')],
      ],
      want: ['a', 'a'],
    },
    {
      what: 'another reason with the same text: written',
      steps: [
        [0, event('a')],
        [1, event('a', 'u', 'ImportSucceeded')],
      ],
      want: ['a', 'a'],
    },
    {
      what: `${MAX_SIMILAR} similar events written as they are, the next combined, the rest dropped`,
      steps: manyDistinct(MAX_SIMILAR + 3),
      want: [
        ...Array.from({ length: MAX_SIMILAR }, (_, i) => `attempt ${i}`),
        `${COMBINED_PREFIX}attempt ${MAX_SIMILAR}`,
        '-',
        '-',
      ],
    },
    {
      what: 'similar events after the aggregation window: written again',
      steps: [...manyDistinct(MAX_SIMILAR + 2), [SIMILAR_WINDOW_MS, event('later')]],
      want: [
        ...Array.from({ length: MAX_SIMILAR }, (_, i) => `attempt ${i}`),
        `${COMBINED_PREFIX}attempt ${MAX_SIMILAR}`,
        '-',
        'later',
      ],
    },
  ])('$what', ({ steps, want }) => {
    expect(run(steps)).toEqual(want);
  });
});
