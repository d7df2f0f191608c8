// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['60', 60_000],
    ['0.5', 500],
    ['60s', 60_000],
    ['500ms', 500],
    ['4m', 240_000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    [' 2m ', 120_000],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 's', '10x', '-5s', '1m 30s', 'ten', '5s3'])('%j is refused', (text) => {
    expect(() => parseDuration(text)).toThrow(/is not a duration/);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0 ms'],
    [300, '300 ms'],
    [45_400, '45 s'],
    [240_000, '4 min'],
    [247_000, '4 min 7 s'],
  ])('%d ms reads %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
