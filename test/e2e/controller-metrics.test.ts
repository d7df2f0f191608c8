// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: the `cdi controller` process the sandbox starts serves its probes and CDI's metrics.
 * Scraped with a Prometheus text parser: the controller reports ready, a StorageProfile series per
 * class, and `kubevirt_cdi_datavolume_pending` counts a DataVolume that names no class while the
 * cluster has no default class, dropping back once a default class lets it proceed.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrometheusText, sampleValue, type Exposition } from '../helpers/prom-text.js';
import { DEFAULT_CLASS_ANNOTATION } from '../sandbox/cluster.js';
import { repoRoot, startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubectl } from '../sandbox/testing.js';

let sandbox: Sandbox;
let metricsUrl: string;

/** Debian's interpreter, where python3-prometheus-client is installed. */
const PYTHON = process.env['CDI_PYTHON'] ?? '/usr/bin/python3';

interface PythonSample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number | null;
  readonly type: string;
  readonly family: string;
}

/** The samples the Prometheus project's parser reads from `text` (test/e2e/python/prom_parse.py). */
function parseWithPrometheusClient(text: string): Promise<PythonSample[]> {
  const script = join(repoRoot(), 'test', 'e2e', 'python', 'prom_parse.py');
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, [script], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(
          new Error(
            `${PYTHON} ${script} failed (is python3-prometheus-client installed? scripts/install-debian-deps.sh):\n${stderr}`,
            { cause: err },
          ),
        );
        return;
      }
      resolve(
        stdout
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as PythonSample),
      );
    });
    child.stdin?.end(text);
  });
}

async function scrape(): Promise<Exposition> {
  const res = await fetch(metricsUrl);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
}

/** Scrapes until `until` holds (bounded); returns that exposition. */
async function scrapeUntil(
  what: string,
  until: (e: Exposition) => boolean,
  timeoutMs = 60_000,
): Promise<Exposition> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      const last = await scrape();
      if (until(last)) return last;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`metrics never showed ${what}${lastError === '' ? '' : `: ${lastError}`}`);
}

function value(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  try {
    return sampleValue(e, name, labels);
  } catch {
    return NaN;
  }
}

async function ok(args: string[]): Promise<string> {
  const r = await kubectl(sandbox, args);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  if (!existsSync(join(repoRoot(), 'dist', 'controller', 'main.js')))
    throw new Error('dist/controller/main.js is missing: run `npm run build:ts`');
  sandbox = await startSandbox({ controller: true });
  if (sandbox.metricsUrl === undefined) throw new Error('the sandbox reports no metrics URL');
  metricsUrl = sandbox.metricsUrl;
});

afterAll(async () => {
  await sandbox?.stop();
});

describe('controller metrics and probes', () => {
  it('answers its probes and reports ready with one profile series per class', async () => {
    const base = metricsUrl.replace(/\/metrics$/, '');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const e = await scrapeUntil('cr_ready 1', (x) => value(x, 'kubevirt_cdi_cr_ready') === 1);
    const readyz = await fetch(`${base}/readyz`);
    expect(`${readyz.status} ${await readyz.text()}`).toBe('200 ok');
    expect(e.types['kubevirt_cdi_storageprofile_info']).toBe('gauge');
    const profiles = await scrapeUntil(
      'the default class profile',
      (x) =>
        value(x, 'kubevirt_cdi_storageprofile_info', {
          storageclass: 'standard',
          default: 'true',
          complete: 'true',
        }) === 1,
    );
    expect(value(profiles, 'kubevirt_cdi_import_pods_high_restart')).toBe(0);
  });

  it('counts a DataVolume pending for a default class until one exists', async () => {
    await ok(['annotate', 'storageclass', 'standard', `${DEFAULT_CLASS_ANNOTATION}-`]);
    const manifest = [
      'apiVersion: cdi.kubevirt.io/v1beta1',
      'kind: DataVolume',
      'metadata: {name: no-class, namespace: default}',
      'spec:',
      '  source: {blank: {}}',
      '  storage: {resources: {requests: {storage: 16Mi}}}',
    ].join('\n');
    const applied = await kubectl(sandbox, ['apply', '-f', '-'], { input: manifest });
    expect(applied.code).toBe(0);
    const pending = await scrapeUntil(
      'one pending DataVolume',
      (x) => value(x, 'kubevirt_cdi_datavolume_pending') === 1,
    );
    expect(
      value(pending, 'kubevirt_cdi_storageprofile_info', {
        storageclass: 'standard',
        default: 'false',
      }),
    ).toBe(1);

    await ok(['annotate', 'storageclass', 'standard', `${DEFAULT_CLASS_ANNOTATION}=true`]);
    const after = await scrapeUntil(
      'no pending DataVolume',
      (x) => value(x, 'kubevirt_cdi_datavolume_pending') === 0,
    );
    const reconciles = after.samples
      .filter(
        (s) =>
          s.name === 'controller_runtime_reconcile_total' &&
          s.labels['controller'] === 'datavolume',
      )
      .reduce((n, s) => n + s.value, 0);
    expect(reconciles).toBeGreaterThan(0);
  });

  it("reads the same samples with the Prometheus project's parser", async () => {
    await scrapeUntil('cr_ready 1', (x) => value(x, 'kubevirt_cdi_cr_ready') === 1);
    const text = await (await fetch(metricsUrl)).text();
    const ours = parsePrometheusText(text);
    const theirs = await parseWithPrometheusClient(text);
    const cdi = (name: string): boolean => name.startsWith('kubevirt_cdi_');
    const key = (name: string, labels: Readonly<Record<string, string>>): string =>
      `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)))}`;
    expect(
      theirs
        .filter((s) => cdi(s.name))
        .map((s) => `${key(s.name, s.labels)}=${String(s.value)}`)
        .sort(),
    ).toEqual(
      ours.samples
        .filter((s) => cdi(s.name))
        .map((s) => `${key(s.name, s.labels)}=${String(s.value)}`)
        .sort(),
    );
    const ready = theirs.find((s) => s.name === 'kubevirt_cdi_cr_ready');
    expect(ready).toMatchObject({ value: 1, type: 'gauge' });
    const pending = theirs.find((s) => s.name === 'kubevirt_cdi_datavolume_pending');
    expect(pending).toMatchObject({ value: 0, type: 'gauge' });
    expect(theirs.some((s) => s.name.startsWith('controller_runtime_reconcile'))).toBe(true);
  });
});
