// SPDX-License-Identifier: Apache-2.0
/**
 * Runs a command under GNU time and reports wall seconds, CPU seconds (user + sys of every process
 * of the pipeline) and peak RSS (of the largest process).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** One measurement. */
export interface Measurement {
  readonly seconds: number;
  /** User + system CPU seconds of the script and every process it waited for. */
  readonly cpuSeconds: number;
  /** Peak resident set size in MiB, as GNU time's %M reports it. */
  readonly peakRssMiB: number;
  /** Peak RSS of each long-running process of ours (the upload proxy and server), in MiB. */
  readonly peakRssByProcessMiB?: Readonly<Record<string, number>>;
}

/** Runs `bash -c script` under `/usr/bin/time`; throws with stderr if it fails. */
export async function measure(
  script: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Measurement> {
  const dir = await mkdtemp(join(tmpdir(), 'cdi-bench-time-'));
  const out = join(dir, 'time.txt');
  try {
    const start = performance.now();
    await execFileAsync(
      '/usr/bin/time',
      ['-f', '%M %U %S', '-o', out, 'bash', '-o', 'pipefail', '-c', script],
      {
        env,
        maxBuffer: 64 << 20,
      },
    );
    const seconds = (performance.now() - start) / 1000;
    const last = (await readFile(out, 'utf8')).trim().split('\n').pop() ?? '';
    const [kib = 0, user = 0, sys = 0] = last.split(' ').map(Number);
    return { seconds, cpuSeconds: user + sys, peakRssMiB: kib / 1024 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Best of `runs` measurements (least noisy on a shared 2-core machine). `prepare` runs untimed
 * before each one: removing the previous output and `sync`, so one run's dirty pages are not
 * written back during the next run's clock.
 */
export async function bestOf(runs: number, script: string, prepare = 'sync'): Promise<Measurement> {
  let best: Measurement | undefined;
  for (let i = 0; i < runs; i++) {
    await measure(prepare);
    const m = await measure(script);
    best = best === undefined ? m : bestOfTwo(best, m);
  }
  if (best === undefined) throw new Error('no run');
  return best;
}

/**
 * The faster wall time and the lower CPU time of two measurements (each least disturbed by other
 * work on the machine), and the higher peak RSS.
 */
export function bestOfTwo(a: Measurement, b: Measurement): Measurement {
  return {
    seconds: Math.min(a.seconds, b.seconds),
    cpuSeconds: Math.min(a.cpuSeconds, b.cpuSeconds),
    peakRssMiB: Math.max(a.peakRssMiB, b.peakRssMiB),
  };
}

let clockTicks: Promise<number> | undefined;

/** User + system CPU seconds a running process has used so far (from /proc/PID/stat). */
export async function processCpuSeconds(pid: number): Promise<number> {
  clockTicks ??= execFileAsync('getconf', ['CLK_TCK']).then(({ stdout }) => Number(stdout.trim()));
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state (field 3); utime and
  // stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / (await clockTicks);
}

/** Shell-quotes one argument. */
export function q(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}
