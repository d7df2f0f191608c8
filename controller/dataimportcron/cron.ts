// SPDX-License-Identifier: Apache-2.0
/**
 * Standard cron schedules, as CDI reads `spec.schedule` (robfig/cron `ParseStandard`): five
 * fields `minute hour day-of-month month day-of-week` with lists, ranges, steps, `*`, `?`, month
 * and weekday names, and the `@yearly`/`@monthly`/`@weekly`/`@daily`/`@hourly` shorthands. When
 * both day fields are restricted a day matches either (the Vixie cron rule). Times are UTC. Pure.
 */
import { CdiError, ErrorCodes } from '../../common/errors.js';

/** A parsed schedule: the allowed values of each field. */
export interface CronSchedule {
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly daysOfMonth: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  readonly daysOfWeek: ReadonlySet<number>;
  /** True when day-of-month or day-of-week was `*` / `?` (then both must match). */
  readonly dayStar: boolean;
}

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'],
  },
  {
    name: 'day-of-week',
    min: 0,
    max: 6,
    names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'],
  },
];

const SHORTHANDS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/** No schedule matches within this many years (robfig gives up after five as well). */
const SEARCH_YEARS = 5;

function invalid(schedule: string, why: string): CdiError {
  return new CdiError(ErrorCodes.InvalidArgument, `invalid cron schedule "${schedule}": ${why}`);
}

function parseValue(text: string, f: FieldSpec, schedule: string): number {
  const byName = f.names?.indexOf(text.toUpperCase()) ?? -1;
  if (byName >= 0) return byName + f.min;
  if (!/^\d+$/.test(text)) throw invalid(schedule, `"${text}" is not a valid ${f.name}`);
  const n = Number(text);
  // Sunday may be written 7, as in Vixie cron.
  if (f.name === 'day-of-week' && n === 7) return 0;
  if (n < f.min || n > f.max) {
    throw invalid(schedule, `${f.name} ${n} is out of range ${f.min}-${f.max}`);
  }
  return n;
}

function parseRange(part: string, f: FieldSpec, schedule: string): number[] {
  const [rangeText = '', stepText] = part.split('/');
  let step = 1;
  if (stepText !== undefined) {
    if (!/^\d+$/.test(stepText) || Number(stepText) === 0) {
      throw invalid(schedule, `step "${stepText}" in ${f.name} must be a positive number`);
    }
    step = Number(stepText);
  }
  let lo: number;
  let hi: number;
  if (rangeText === '*' || rangeText === '?') {
    lo = f.min;
    hi = f.max;
  } else {
    const [a = '', b] = rangeText.split('-');
    lo = parseValue(a, f, schedule);
    // `N/step` runs from N to the field's end, as in robfig/cron.
    hi = b !== undefined ? parseValue(b, f, schedule) : stepText !== undefined ? f.max : lo;
    if (b !== undefined && f.name === 'day-of-week' && b === '7') hi = 6;
    if (hi < lo) throw invalid(schedule, `range ${rangeText} in ${f.name} is backwards`);
  }
  const out: number[] = [];
  for (let v = lo; v <= hi; v += step) out.push(v);
  // `5-7` for day-of-week ends on Sunday: 7 was mapped to 0 above for single values only.
  if (f.name === 'day-of-week' && rangeText.endsWith('-7')) out.push(0);
  return out;
}

function parseField(text: string, f: FieldSpec, schedule: string): Set<number> {
  const values = new Set<number>();
  for (const part of text.split(',')) {
    if (part === '') throw invalid(schedule, `empty list item in ${f.name}`);
    for (const v of parseRange(part, f, schedule)) values.add(v);
  }
  return values;
}

/** Parses a standard cron schedule; throws `CDI_INVALID_ARGUMENT` naming the bad part. */
export function parseCron(schedule: string): CronSchedule {
  const trimmed = schedule.trim();
  const expanded = SHORTHANDS[trimmed.toLowerCase()] ?? trimmed;
  if (expanded.startsWith('@')) throw invalid(schedule, `unknown descriptor ${expanded}`);
  const parts = expanded.split(/\s+/);
  if (parts.length !== FIELDS.length) {
    throw invalid(schedule, `expected 5 fields, found ${parts.length}`);
  }
  const sets = FIELDS.map((f, i) => parseField(parts[i] ?? '', f, schedule));
  const isStar = (t: string | undefined): boolean => t?.startsWith('*') === true || t === '?';
  return {
    minutes: sets[0] ?? new Set(),
    hours: sets[1] ?? new Set(),
    daysOfMonth: sets[2] ?? new Set(),
    months: sets[3] ?? new Set(),
    daysOfWeek: sets[4] ?? new Set(),
    dayStar: isStar(parts[2]) || isStar(parts[4]),
  };
}

function dayMatches(s: CronSchedule, d: Date): boolean {
  const dom = s.daysOfMonth.has(d.getUTCDate());
  const dow = s.daysOfWeek.has(d.getUTCDay());
  return s.dayStar ? dom && dow : dom || dow;
}

/**
 * The first time strictly after `after` (at a whole minute) that the schedule matches; undefined
 * when none does within five years (`30 0 31 2 *`, February 31st).
 */
export function nextRun(s: CronSchedule, after: Date): Date | undefined {
  const t = new Date(after.getTime());
  t.setUTCSeconds(0, 0);
  t.setUTCMinutes(t.getUTCMinutes() + 1);
  const limit = after.getTime() + SEARCH_YEARS * 366 * 24 * 3600 * 1000;
  // Each step skips the largest unit that cannot match; a handful of steps per field at most.
  while (t.getTime() <= limit) {
    if (!s.months.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1);
      t.setUTCHours(0, 0, 0, 0);
    } else if (!dayMatches(s, t)) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
    } else if (!s.hours.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
    } else if (!s.minutes.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
    } else {
      return t;
    }
  }
  return undefined;
}
