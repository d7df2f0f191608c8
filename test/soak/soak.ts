// SPDX-License-Identifier: Apache-2.0
/**
 * The fault-injection soak: imports of mixed formats (qcow2, raw, gzip, xz, zstd) from a server
 * that misbehaves at random (fault-server.ts), through `cdi import` and through DataVolumes in the
 * sandbox cluster, killing importers and the controller at random moments. Every import must end
 * either with a disk identical to `qemu-img convert -O raw` of the image, or with a clear one-line
 * error and no file; anything else is an anomaly and fails the run. Seeded: the same seed gives
 * the same images, formats, fault draws and kills (timing still varies with the machine's load).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { ConditionTypes } from '../../common/api/phases.js';
import type { DataVolume } from '../../common/api/datavolume.js';
import {
  apply,
  httpDvManifest,
  killImporter,
  sameDisk,
  startControllerEnv,
  volumeData,
  waitForDv,
  type ControllerEnv,
} from '../e2e/controller-harness.js';
import {
  compressFile,
  makeRawImage,
  makeTempDir,
  qemuConvertToRaw,
  qemuImg,
  sameContent,
} from '../fixtures/index.js';
import { CDI_BIN } from '../helpers/cdi-cli.js';
import { kubectl } from '../sandbox/testing.js';
import { FAULT_KINDS, seededRandom, startFaultServer, type FaultKind } from './fault-server.js';

/** Formats the soak draws from: the served path of each. */
export const SOAK_FORMATS = ['qcow2', 'raw', 'raw.gz', 'qcow2.xz', 'raw.zst'] as const;
export type SoakFormat = (typeof SOAK_FORMATS)[number];

/** Options of {@link runSoak}. */
export interface SoakOptions {
  readonly imports: number;
  readonly seed: number;
  /** Share of the imports that go through DataVolumes in the sandbox (default 0.25; 0: CLI only). */
  readonly dataVolumeShare?: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
  /** Start no new import after this many milliseconds (the report counts those done). */
  readonly maxMs?: number;
}

/** How one import ended. */
export type Outcome = 'identical' | 'clearError' | 'anomaly';

/** What a run did. */
export interface SoakReport {
  readonly seed: number;
  readonly imports: number;
  readonly byPath: { readonly cli: number; readonly dataVolume: number };
  readonly byFormat: Record<string, number>;
  readonly faults: Record<FaultKind, number>;
  readonly requests: number;
  readonly importerKills: number;
  readonly controllerRestarts: number;
  readonly outcomes: Record<Outcome, number>;
  /** Error lines of imports that failed cleanly, counted by their code-like prefix. */
  readonly errors: Record<string, number>;
  /** What went wrong, one line each; empty in a good run. */
  readonly anomalies: string[];
  readonly seconds: number;
}

/** Limits of the CLI imports: small, so that stalls resolve in seconds. */
const CLI_LIMITS = ['--idle-timeout', '700ms', '--stall-budget', '5s'];
/** A DataVolume import that takes longer than this is an anomaly (it must end by itself). */
const DV_TIMEOUT_MS = 180_000;
/** Runs of one CLI import: a kill is followed by a run again, as a pod restart would. */
const CLI_RUNS = 4;

interface Fixtures {
  readonly dir: string;
  readonly files: Record<string, Buffer>;
  readonly reference: string;
  cleanup(): Promise<void>;
}

async function makeFixtures(seed: number): Promise<Fixtures> {
  const tmp = await makeTempDir('cdi-soak-');
  const random = seededRandom(seed ^ 0x5eed);
  const MiB = 1024 * 1024;
  const regions = Array.from({ length: 4 }, (_, i) => ({
    offset: i * 2 * MiB + Math.floor(random() * 64) * 4096,
    length: 256 * 1024 + Math.floor(random() * 512) * 1024,
    seed: Math.floor(random() * 1e6),
  }));
  const raw = await makeRawImage(join(tmp.dir, 'disk.raw'), 8 * MiB, regions);
  const qcow2 = join(tmp.dir, 'disk.qcow2');
  await qemuImg('convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2);
  const reference = await qemuConvertToRaw(qcow2, join(tmp.dir, 'reference.raw'));
  const paths: Record<SoakFormat, string> = {
    raw,
    qcow2,
    'raw.gz': await compressFile(raw, `${raw}.gz`, 'gzip'),
    'qcow2.xz': await compressFile(qcow2, `${qcow2}.xz`, 'xz'),
    'raw.zst': await compressFile(raw, `${raw}.zst`, 'zstd'),
  };
  const files: Record<string, Buffer> = {};
  for (const f of SOAK_FORMATS) files[`/disk.${f}`] = await readFile(paths[f]);
  return { dir: tmp.dir, files, reference, cleanup: tmp.cleanup };
}

interface CliRun {
  readonly code: number | null;
  readonly stderr: string;
  readonly killed: boolean;
}

/** Runs `cdi import` once, killing it after `killAfterMs` when given. */
function runImportOnce(
  url: string,
  dest: string,
  killAfterMs: number | undefined,
): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [CDI_BIN, 'import', '--source', url, '--dest', dest, '--quiet', ...CLI_LIMITS],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer =
      killAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            killed = child.kill('SIGKILL');
          }, killAfterMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, killed: killed && code !== 0 });
    });
  });
}

/** The first words of an error line that name its kind (for counting). */
function errorKind(line: string): string {
  const m = /^cdi import: (?:Unable to [^:]+: )?(.*)$/.exec(line);
  const text = m?.[1] ?? line;
  if (/stalled/.test(text)) return 'stalled';
  if (/ETag changed|resuming|failed after/.test(text)) return 'resume failed';
  if (/Content-Length|ended after|does not match its/.test(text)) return 'short body';
  if (/status code/.test(text)) return 'http status';
  return text.slice(0, 60);
}

/** What every import of a run shares. */
interface RunContext {
  readonly fx: Fixtures;
  readonly random: () => number;
  readonly tally: Tally;
}

interface Tally {
  faults: Record<FaultKind, number>;
  importerKills: number;
  controllerRestarts: number;
  outcomes: Record<Outcome, number>;
  errors: Record<string, number>;
  anomalies: string[];
}

async function cliImport(index: number, url: string, run: RunContext): Promise<void> {
  const { fx, random, tally } = run;
  const dest = join(fx.dir, `cli-${index}.img`);
  let last: CliRun | undefined;
  for (let attempt = 0; attempt < CLI_RUNS; attempt++) {
    const kill =
      attempt < CLI_RUNS - 1 && random() < 0.2 ? 50 + Math.floor(random() * 1500) : undefined;
    last = await runImportOnce(url, dest, kill);
    if (last.killed) {
      tally.importerKills++;
      continue;
    }
    break;
  }
  if (last === undefined) return;
  const what = `cli #${index} ${url}`;
  if (last.code === 0) {
    if (await sameContent(dest, fx.reference)) tally.outcomes.identical++;
    else {
      tally.outcomes.anomaly++;
      tally.anomalies.push(`${what}: exit 0 but the disk differs from qemu-img's`);
    }
  } else {
    const lines = last.stderr.trim().split('\n');
    const line = lines.at(-1) ?? '';
    const clear = /^cdi import: \S.*/.test(line) && !/Internal|undefined|\[object/.test(line);
    const leftovers = [dest, `${dest}.part`].filter((p) => existsSync(p));
    if (clear && leftovers.length === 0) {
      tally.outcomes.clearError++;
      const kind = errorKind(line);
      tally.errors[kind] = (tally.errors[kind] ?? 0) + 1;
    } else {
      tally.outcomes.anomaly++;
      tally.anomalies.push(
        `${what}: exit ${String(last.code)}, error ${JSON.stringify(line)}, left ${leftovers.join(', ') || 'nothing'}`,
      );
    }
  }
  await Promise.all([dest, `${dest}.part`].map((p) => rm(p, { force: true })));
}

function runningMessage(dv: DataVolume): string {
  return dv.status?.conditions?.find((c) => c.type === ConditionTypes.Running)?.message ?? '';
}

async function dataVolumeImport(
  env: ControllerEnv,
  index: number,
  url: string,
  run: RunContext,
): Promise<void> {
  const { fx, random, tally } = run;
  const name = `soak-${index}`;
  const what = `dv ${name} ${url}`;
  await apply(env, httpDvManifest(name, url, '', '32Mi'));
  const done = waitForDv(
    env,
    'default',
    name,
    (dv) => dv.status?.phase === 'Succeeded' || dv.status?.phase === 'Failed',
    DV_TIMEOUT_MS,
  );
  // Meanwhile, at random moments: kill its importer, restart the controller.
  const chaos = (async (): Promise<void> => {
    const start = await waitForDv(env, 'default', name, (dv) => dv.metadata.uid !== undefined);
    for (let i = 0; i < 3; i++) {
      await delay(200 + Math.floor(random() * 1500));
      const r = random();
      if (r < 0.35) {
        tally.importerKills += await killImporter(start.metadata.uid ?? '');
      } else if (r < 0.5) {
        await env.stopController();
        await delay(Math.floor(random() * 1000));
        await env.startController();
        tally.controllerRestarts++;
      }
    }
  })();
  let dv: DataVolume | undefined;
  try {
    dv = await done;
  } catch (err) {
    tally.outcomes.anomaly++;
    tally.anomalies.push(`${what}: did not end within ${DV_TIMEOUT_MS / 1000} s (${String(err)})`);
  }
  await chaos.catch(() => undefined);
  if (dv !== undefined) {
    const disk = await volumeData(env, 'default', name).catch(() => '');
    if (dv.status?.phase === 'Succeeded') {
      if (disk !== '' && (await sameDisk(fx.reference, disk))) tally.outcomes.identical++;
      else {
        tally.outcomes.anomaly++;
        tally.anomalies.push(`${what}: Succeeded but the disk differs from qemu-img's`);
      }
    } else {
      const message = runningMessage(dv);
      if (message !== '' && (disk === '' || !existsSync(disk))) {
        tally.outcomes.clearError++;
        tally.errors[message.slice(0, 60)] = (tally.errors[message.slice(0, 60)] ?? 0) + 1;
      } else {
        tally.outcomes.anomaly++;
        tally.anomalies.push(`${what}: Failed with message ${JSON.stringify(message)}`);
      }
    }
  }
  await kubectl(env.sandbox, ['delete', 'dv', name, '--wait=false']);
}

/** Runs the soak; see the module comment. */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const log = options.log ?? ((): void => undefined);
  const random = seededRandom(options.seed);
  const fx = await makeFixtures(options.seed);
  // The CLI server stalls for ever (the importer's idle timeout must notice); the one the
  // DataVolumes use stalls for a few seconds and drops, since their importers keep CDI's
  // default limits (a 60 s idle timeout).
  const cliServer = await startFaultServer({ files: fx.files, seed: options.seed });
  const dvServer = await startFaultServer({
    files: fx.files,
    seed: options.seed + 1,
    faultRate: 0.4,
    stallMs: 1500,
  });
  const share = options.dataVolumeShare ?? 0.25;
  const plan = Array.from({ length: options.imports }, (_, i) => ({
    index: i,
    format: SOAK_FORMATS[Math.floor(random() * SOAK_FORMATS.length)] ?? 'raw',
    dataVolume: random() < share,
  }));
  const tally: Tally = {
    faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    importerKills: 0,
    controllerRestarts: 0,
    outcomes: { identical: 0, clearError: 0, anomaly: 0 },
    errors: {},
    anomalies: [],
  };
  const run: RunContext = { fx, random, tally };
  const byFormat: Record<string, number> = {};
  let env: ControllerEnv | undefined;
  let done = 0;
  try {
    for (const step of plan) {
      if (options.maxMs !== undefined && Date.now() - started > options.maxMs) break;
      done++;
      byFormat[step.format] = (byFormat[step.format] ?? 0) + 1;
      if (step.dataVolume) {
        env ??= await startControllerEnv();
        await dataVolumeImport(env, step.index, dvServer.url(`/disk.${step.format}`), run);
      } else {
        await cliImport(step.index, cliServer.url(`/disk.${step.format}`), run);
      }
      const o = tally.outcomes;
      log(
        `${step.index + 1}/${options.imports} ${step.dataVolume ? 'dv ' : 'cli'} ${step.format}: ` +
          `identical ${o.identical}, clear errors ${o.clearError}, anomalies ${o.anomaly}`,
      );
    }
  } finally {
    await env?.stop();
    await cliServer.close();
    await dvServer.close();
    await fx.cleanup();
  }
  for (const k of FAULT_KINDS) tally.faults[k] = cliServer.injected[k] + dvServer.injected[k];
  return {
    seed: options.seed,
    imports: done,
    byPath: {
      cli: plan.slice(0, done).filter((p) => !p.dataVolume).length,
      dataVolume: plan.slice(0, done).filter((p) => p.dataVolume).length,
    },
    byFormat,
    faults: tally.faults,
    requests: cliServer.requests() + dvServer.requests(),
    importerKills: tally.importerKills,
    controllerRestarts: tally.controllerRestarts,
    outcomes: tally.outcomes,
    errors: tally.errors,
    anomalies: tally.anomalies,
    seconds: Math.round((Date.now() - started) / 1000),
  };
}
