// SPDX-License-Identifier: Apache-2.0
/**
 * Durations as users write them in flags and pod environments: Go's `time.ParseDuration` form
 * (`90s`, `1m30s`, `500ms`, `2h`), which Kubernetes users know from CDI's and kubelet's settings,
 * or a bare number of seconds. Pure.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;

/** Milliseconds of `text`; throws an Error naming the text when it is not a duration. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  let ms = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < trimmed.length) {
    const start = PART.lastIndex;
    const m = PART.exec(trimmed);
    const unit = m?.[2];
    if (m === null || unit === undefined || PART.lastIndex === start) break;
    ms += Number(m[1]) * (UNIT_MS[unit] ?? 0);
  }
  if (trimmed === '' || PART.lastIndex !== trimmed.length) {
    throw new Error(`${JSON.stringify(text)} is not a duration (e.g. 60s, 5m, 1m30s)`);
  }
  return Math.round(ms);
}

/** A duration for messages: `300 ms`, `45 s`, `4 min`, `4 min 7 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  const rest = s % 60;
  return rest === 0 ? `${m} min` : `${m} min ${rest} s`;
}
