// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';

import {
  DEFAULT_LIFETIMES,
  certConfigAnnotation,
  certConfigProblems,
  goDuration,
  resolveLifetimes,
} from './cert-config.js';

const H = 3_600_000;

describe('resolveLifetimes', () => {
  it.each([
    { what: 'no certConfig: the defaults', config: undefined, want: DEFAULT_LIFETIMES },
    {
      what: 'CDI’s release values',
      config: {
        ca: { duration: '48h', renewBefore: '24h' },
        server: { duration: '24h', renewBefore: '12h' },
      },
      want: {
        ca: { lifetimeMs: 48 * H, renewBeforeMs: 24 * H },
        server: { lifetimeMs: 24 * H, renewBeforeMs: 12 * H },
        client: DEFAULT_LIFETIMES.client,
      },
    },
    {
      what: 'a duration alone renews at a fifth left',
      config: { client: { duration: '10h' } },
      want: { ...DEFAULT_LIFETIMES, client: { lifetimeMs: 10 * H, renewBeforeMs: 2 * H } },
    },
    {
      what: 'a renewBefore alone keeps the default duration',
      config: { server: { renewBefore: '240h' } },
      want: {
        ...DEFAULT_LIFETIMES,
        server: { lifetimeMs: DEFAULT_LIFETIMES.server.lifetimeMs, renewBeforeMs: 240 * H },
      },
    },
    {
      what: 'a class with a problem keeps its defaults',
      config: { ca: { duration: '1h', renewBefore: '2h' }, server: { duration: '5h' } },
      want: {
        ...DEFAULT_LIFETIMES,
        server: { lifetimeMs: 5 * H, renewBeforeMs: 1 * H },
      },
    },
  ])('$what', ({ config, want }) => {
    expect(resolveLifetimes(config)).toEqual(want);
  });
});

describe('certConfigProblems', () => {
  it.each([
    { config: undefined, want: [] },
    { config: { ca: { duration: '48h', renewBefore: '24h' } }, want: [] },
    {
      config: { ca: { duration: '24h', renewBefore: '48h' } },
      want: ['spec.certConfig.ca.renewBefore (48h) must be shorter than duration (24h)'],
    },
    {
      config: { server: { renewBefore: '3000h' } },
      want: ['spec.certConfig.server.renewBefore (3000h) must be shorter than duration (2160h)'],
    },
    {
      config: { client: { duration: 'soon' } },
      want: ['spec.certConfig.client.duration: "soon" is not a duration (e.g. 48h, 90m)'],
    },
    {
      config: { ca: { duration: '0s' } },
      want: ['spec.certConfig.ca.duration must be positive, got "0s"'],
    },
  ])('$config', ({ config, want }) => {
    expect(certConfigProblems(config)).toEqual(want);
  });
});

describe('the certConfig annotation', () => {
  it('holds Go durations as CDI’s operator writes them', () => {
    expect(certConfigAnnotation({ lifetimeMs: 48 * H, renewBeforeMs: 24 * H })).toBe(
      '{"lifetime":"48h0m0s","refresh":"24h0m0s"}',
    );
    expect([goDuration(90_000), goDuration(5_000), goDuration(5400_000)]).toEqual([
      '1m30s',
      '5s',
      '1h30m0s',
    ]);
  });
});
