// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run soak -- --imports 50 --seed N [--dv-share 0.25] [--minutes M] [--json]`: runs the
 * fault-injection soak (soak.ts) and prints its report (`--minutes`: start no import after M); exits 1 when any import ended neither identical to
 * qemu-img's output nor with a clear error and no file.
 */
import { parseArgs } from 'node:util';
import { runSoak } from './soak.js';

const { values } = parseArgs({
  options: {
    imports: { type: 'string', default: '50' },
    seed: { type: 'string', default: '1' },
    'dv-share': { type: 'string', default: '0.25' },
    json: { type: 'boolean', default: false },
    minutes: { type: 'string' },
  },
});
const imports = Number(values.imports);
const seed = Number(values.seed);
const share = Number(values['dv-share']);
if (
  !Number.isInteger(imports) ||
  imports < 1 ||
  !Number.isInteger(seed) ||
  !(share >= 0 && share <= 1)
) {
  process.stderr.write('usage: npm run soak -- --imports N --seed S [--dv-share 0..1] [--json]\n');
  process.exit(2);
}
const report = await runSoak({
  imports,
  seed,
  dataVolumeShare: share,
  ...(values.minutes === undefined ? {} : { maxMs: Number(values.minutes) * 60_000 }),
  log: (line) => process.stderr.write(`${line}\n`),
});
if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else {
  const o = report.outcomes;
  process.stdout.write(
    [
      `soak seed ${report.seed}: ${report.imports} imports (${report.byPath.cli} cdi import, ${report.byPath.dataVolume} DataVolumes) in ${report.seconds} s`,
      `formats: ${JSON.stringify(report.byFormat)}`,
      `faults injected over ${report.requests} requests: ${JSON.stringify(report.faults)}`,
      `importer kills ${report.importerKills}, controller restarts ${report.controllerRestarts}`,
      `outcomes: ${o.identical} identical to qemu-img, ${o.clearError} clear errors (no file), ${o.anomaly} anomalies`,
      `errors: ${JSON.stringify(report.errors)}`,
      ...report.anomalies.map((a) => `ANOMALY ${a}`),
    ].join('\n') + '\n',
  );
}
process.exit(report.anomalies.length === 0 ? 0 : 1);
