// SPDX-License-Identifier: Apache-2.0
/** Runs a command under GNU time and reports wall seconds and peak RSS (of the largest process). */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** One measurement. */
export interface Measurement {
  readonly seconds: number;
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
      ['-f', '%M', '-o', out, 'bash', '-o', 'pipefail', '-c', script],
      {
        env,
        maxBuffer: 64 << 20,
      },
    );
    const seconds = (performance.now() - start) / 1000;
    const kib = Number.parseInt((await readFile(out, 'utf8')).trim().split('\n').pop() ?? '0', 10);
    return { seconds, peakRssMiB: kib / 1024 };
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
    if (best === undefined || m.seconds < best.seconds)
      best = { seconds: m.seconds, peakRssMiB: Math.max(m.peakRssMiB, best?.peakRssMiB ?? 0) };
  }
  if (best === undefined) throw new Error('no run');
  return best;
}

/** Shell-quotes one argument. */
export function q(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}
