// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { nextRun, parseCron } from './cron.js';

function next(schedule: string, after: string): string | undefined {
  return nextRun(parseCron(schedule), new Date(after))?.toISOString();
}

describe('nextRun', () => {
  it.each([
    {
      what: 'every minute',
      s: '* * * * *',
      after: '2026-12-07T10:15:30Z',
      want: '2026-12-07T10:16:00.000Z',
    },
    {
      what: 'every minute, exactly on a minute',
      s: '* * * * *',
      after: '2026-12-07T10:15:00Z',
      want: '2026-12-07T10:16:00.000Z',
    },
    {
      what: 'every 15 minutes',
      s: '*/15 * * * *',
      after: '2026-12-07T10:16:00Z',
      want: '2026-12-07T10:30:00.000Z',
    },
    {
      what: 'hourly wraps the day',
      s: '0 * * * *',
      after: '2026-12-31T23:10:00Z',
      want: '2027-01-01T00:00:00.000Z',
    },
    {
      what: 'daily at 02:30',
      s: '30 2 * * *',
      after: '2026-12-07T03:00:00Z',
      want: '2026-12-08T02:30:00.000Z',
    },
    {
      what: 'list and range of hours',
      s: '0 1,5-6 * * *',
      after: '2026-12-07T05:00:00Z',
      want: '2026-12-07T06:00:00.000Z',
    },
    {
      what: 'range with step',
      s: '0 8-18/4 * * *',
      after: '2026-12-07T12:00:00Z',
      want: '2026-12-07T16:00:00.000Z',
    },
    {
      what: 'weekday by name (Monday)',
      s: '0 0 * * MON',
      after: '2026-12-07T00:00:00Z',
      want: '2026-12-14T00:00:00.000Z',
    },
    {
      what: 'Sunday as 7',
      s: '0 0 * * 7',
      after: '2026-12-07T00:00:00Z',
      want: '2026-12-13T00:00:00.000Z',
    },
    {
      what: 'weekend range ending in 7',
      s: '0 0 * * 6-7',
      after: '2026-12-12T00:00:00Z',
      want: '2026-12-13T00:00:00.000Z',
    },
    {
      what: 'month by name',
      s: '0 0 1 mar *',
      after: '2026-12-07T00:00:00Z',
      want: '2027-03-01T00:00:00.000Z',
    },
    {
      what: 'both day fields restricted: either matches',
      s: '0 0 15 * FRI',
      after: '2026-12-07T00:00:00Z',
      want: '2026-12-11T00:00:00.000Z',
    },
    {
      what: 'day-of-month with ? for weekday: only the 15th',
      s: '0 0 15 * ?',
      after: '2026-12-07T00:00:00Z',
      want: '2026-12-15T00:00:00.000Z',
    },
    {
      what: 'leap day',
      s: '0 0 29 2 *',
      after: '2026-03-01T00:00:00Z',
      want: '2028-02-29T00:00:00.000Z',
    },
    {
      what: '@daily',
      s: '@daily',
      after: '2026-12-07T10:00:00Z',
      want: '2026-12-08T00:00:00.000Z',
    },
    {
      what: '@hourly',
      s: '@hourly',
      after: '2026-12-07T10:00:00Z',
      want: '2026-12-07T11:00:00.000Z',
    },
    {
      what: 'CDI’s default schedule shape',
      s: '0 */12 * * *',
      after: '2026-12-07T10:00:00Z',
      want: '2026-12-07T12:00:00.000Z',
    },
    {
      what: 'never (February 31st)',
      s: '0 0 31 2 *',
      after: '2026-12-07T10:00:00Z',
      want: undefined,
    },
  ])('$what', ({ s, after, want }) => {
    expect(next(s, after)).toBe(want);
  });
});

describe('parseCron refuses', () => {
  it.each([
    { what: 'too few fields', s: '* * * *', message: 'expected 5 fields, found 4' },
    { what: 'seconds field', s: '0 * * * * *', message: 'expected 5 fields, found 6' },
    { what: 'minute out of range', s: '60 * * * *', message: 'minute 60 is out of range 0-59' },
    {
      what: 'zero step',
      s: '*/0 * * * *',
      message: 'step "0" in minute must be a positive number',
    },
    { what: 'backwards range', s: '0 5-1 * * *', message: 'range 5-1 in hour is backwards' },
    { what: 'bad name', s: '0 0 * * FUNDAY', message: '"FUNDAY" is not a valid day-of-week' },
    { what: 'unknown descriptor', s: '@every 5m', message: 'unknown descriptor @every 5m' },
    { what: 'empty list item', s: '1,,2 * * * *', message: 'empty list item in minute' },
  ])('$what', ({ s, message }) => {
    let caught: unknown;
    try {
      parseCron(s);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({
      code: 'CDI_INVALID_ARGUMENT',
      message: `invalid cron schedule "${s}": ${message}`,
    });
  });
});
