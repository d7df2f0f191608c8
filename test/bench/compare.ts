// SPDX-License-Identifier: Apache-2.0
/**
 * The benchmark's comparison framework: one row is ours against one baseline, best of `runs`
 * alternating the two, each output checked against a reference before its time counts, printed
 * as one line with the ratio, the goal and whether it was met.
 */
import { stat } from 'node:fs/promises';
import { sha256File } from '../fixtures/index.js';
import type { Measurement } from './measure.js';

/** One comparison's result. */
export interface Row {
  readonly section: string;
  readonly what: string;
  readonly ours: Measurement;
  readonly theirs: Measurement;
  readonly baseline: string;
  /** The ratio ours / theirs we aim at or below. */
  readonly goal: number;
  /** Wall seconds of every run of each side, in order (the spread behind the best). */
  readonly runs?: { readonly ours: readonly number[]; readonly theirs: readonly number[] };
}

/** What a row compares before it has results. */
export type RowHead = Omit<Row, 'ours' | 'theirs' | 'runs'>;

/** One side of a comparison. */
export interface Side {
  /** One timed run (untimed preparation, such as removing the last output, included). */
  run(): Promise<Measurement>;
  /** Throws when the last run's output is wrong. */
  check(): Promise<void>;
}

/**
 * Runs both sides `runs` times, alternating (on this VM the first large write after memory was
 * freed is up to 4x slower: alternation spreads that evenly), keeps the fastest time and the
 * largest RSS of each side, and checks each side's output after its first run.
 */
export async function compareSides(
  head: RowHead,
  ours: Side,
  theirs: Side,
  runs: number,
): Promise<Row> {
  let o: Measurement | undefined;
  let t: Measurement | undefined;
  const all = { ours: [] as number[], theirs: [] as number[] };
  for (let i = 0; i < runs; i++) {
    const mo = await ours.run();
    all.ours.push(mo.seconds);
    o = faster(o, mo);
    if (i === 0) await ours.check();
    const mt = await theirs.run();
    all.theirs.push(mt.seconds);
    t = faster(t, mt);
    if (i === 0) await theirs.check();
  }
  if (o === undefined || t === undefined) throw new Error('no run');
  return { ...head, ours: o, theirs: t, runs: all };
}

/** The faster time, the lower CPU time, and the peak RSS (per process too) of both. */
export function faster(a: Measurement | undefined, b: Measurement): Measurement {
  if (a === undefined) return b;
  const byProcess = { ...a.peakRssByProcessMiB };
  for (const [name, mib] of Object.entries(b.peakRssByProcessMiB ?? {}))
    byProcess[name] = Math.max(byProcess[name] ?? 0, mib);
  return {
    seconds: Math.min(a.seconds, b.seconds),
    cpuSeconds: Math.min(a.cpuSeconds, b.cpuSeconds),
    peakRssMiB: Math.max(a.peakRssMiB, b.peakRssMiB),
    ...(Object.keys(byProcess).length === 0 ? {} : { peakRssByProcessMiB: byProcess }),
  };
}

/** Ours / theirs. */
export function ratioOf(r: Row): number {
  return r.ours.seconds / r.theirs.seconds;
}

/** Ours / theirs in CPU seconds (user + sys of every process). */
export function cpuRatioOf(r: Row): number {
  return r.ours.cpuSeconds / r.theirs.cpuSeconds;
}

/** Whether the row's ratio is at or below its goal. */
export function goalMet(r: Row): boolean {
  return ratioOf(r) <= r.goal;
}

/** The row as one line (with its newline). */
export function formatRow(r: Row): string {
  const byProcess = Object.entries(r.ours.peakRssByProcessMiB ?? {});
  const rss =
    byProcess.length === 0
      ? `our peak RSS ${r.ours.peakRssMiB.toFixed(0)} MiB`
      : `rss ${byProcess.map(([name, mib]) => `${name} ${mib.toFixed(0)} MiB`).join(', ')}`;
  const cpu = `cpu ${r.ours.cpuSeconds.toFixed(2)}s vs ${r.theirs.cpuSeconds.toFixed(2)}s (${cpuRatioOf(r).toFixed(2)})`;
  const spread =
    r.runs === undefined || r.runs.ours.length < 2
      ? ''
      : `  runs ours ${range(r.runs.ours)}s, theirs ${range(r.runs.theirs)}s`;
  return (
    `${r.section.padEnd(9)} ${r.what.padEnd(34)} ours ${r.ours.seconds.toFixed(2).padStart(7)}s  ` +
    `${r.baseline.padEnd(38)} ${r.theirs.seconds.toFixed(2).padStart(7)}s  ratio ${ratioOf(r).toFixed(2)} ` +
    `(goal <= ${r.goal.toFixed(1)}: ${goalMet(r) ? 'met' : 'MISSED'})  ${cpu}  ${rss}${spread}\n`
  );
}

/** `min-max` of wall times. */
function range(seconds: readonly number[]): string {
  return `${Math.min(...seconds).toFixed(2)}-${Math.max(...seconds).toFixed(2)}`;
}

const referenceHashes = new Map<string, Promise<string>>();

/**
 * Throws unless `out` has the same bytes as `reference`; the reference's hash is computed once
 * per process (keyed by path, size and mtime), as every row checks against the same few files.
 */
export async function checkSame(out: string, reference: string, what: string): Promise<void> {
  const [so, sr] = await Promise.all([stat(out), stat(reference)]);
  if (so.size !== sr.size)
    throw new Error(`${what}: output has ${so.size} bytes, the reference ${sr.size}`);
  const key = `${reference}\0${sr.size}\0${sr.mtimeMs}`;
  let ref = referenceHashes.get(key);
  if (ref === undefined) {
    ref = sha256File(reference);
    referenceHashes.set(key, ref);
  }
  if ((await sha256File(out)) !== (await ref))
    throw new Error(`${what}: output differs from the reference`);
}
