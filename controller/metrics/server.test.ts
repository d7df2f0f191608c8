// SPDX-License-Identifier: Apache-2.0
import { afterEach, describe, expect, it } from 'vitest';
import { parsePrometheusText, sampleValue } from '../../test/helpers/prom-text.js';
import type { DataVolume } from '../../common/api/datavolume.js';
import type { OperationalInput } from './operational.js';
import { ControllerMetrics } from './registry.js';
import { startMetricsServer, type MetricsServer } from './server.js';

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function get(path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${server?.url ?? ''}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('metrics server', () => {
  it('serves probes and CDI’s gauges from the attached source', async () => {
    const metrics = new ControllerMetrics();
    let ready: string | undefined = 'caches not synced';
    const source: { input?: OperationalInput } = {};
    metrics.attach({ operationalInput: () => source.input, crReady: () => ready === undefined });
    server = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      registry: metrics.registry,
      notReady: () => ready,
    });

    expect(await get('/healthz')).toEqual({ status: 200, body: 'ok' });
    expect(await get('/readyz')).toEqual({ status: 503, body: 'not ready: caches not synced' });
    expect((await get('/nope')).status).toBe(404);
    let scrape = parsePrometheusText((await get('/metrics')).body);
    expect(sampleValue(scrape, 'kubevirt_cdi_cr_ready')).toBe(0);
    expect(sampleValue(scrape, 'kubevirt_cdi_datavolume_pending')).toBe(0);

    ready = undefined;
    source.input = {
      dataVolumes: [
        { metadata: { name: 'a' }, spec: { storage: {} } },
        { metadata: { name: 'b' }, spec: { storage: {} }, status: { phase: 'Pending' } },
      ] as DataVolume[],
      pods: [],
      storageClasses: [],
      storageProfiles: [],
    };
    await metrics.observe('datavolume', () => Promise.resolve(undefined));
    await metrics.observe('datavolume', () => Promise.resolve(500));
    await expect(metrics.observe('claim', () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );

    expect((await get('/readyz')).status).toBe(200);
    scrape = parsePrometheusText((await get('/metrics')).body);
    expect(sampleValue(scrape, 'kubevirt_cdi_cr_ready')).toBe(1);
    expect(sampleValue(scrape, 'kubevirt_cdi_datavolume_pending')).toBe(2);
    expect(sampleValue(scrape, 'kubevirt_cdi_import_pods_high_restart')).toBe(0);
    const total = (controller: string, result: string): number =>
      sampleValue(scrape, 'controller_runtime_reconcile_total', { controller, result });
    expect(total('datavolume', 'success')).toBe(1);
    expect(total('datavolume', 'requeue_after')).toBe(1);
    expect(total('claim', 'error')).toBe(1);
    expect(
      sampleValue(scrape, 'controller_runtime_reconcile_errors_total', { controller: 'claim' }),
    ).toBe(1);
    expect(
      sampleValue(scrape, 'controller_runtime_reconcile_time_seconds_count', {
        controller: 'datavolume',
      }),
    ).toBe(2);
    expect(scrape.types['controller_runtime_reconcile_time_seconds']).toBe('histogram');
  });

  it('fails clearly when the port is taken', async () => {
    const metrics = new ControllerMetrics();
    server = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      registry: metrics.registry,
      notReady: () => undefined,
    });
    const port = Number(new URL(server.url).port);
    await expect(
      startMetricsServer({
        host: '127.0.0.1',
        port,
        registry: metrics.registry,
        notReady: () => undefined,
      }),
    ).rejects.toThrow(/EADDRINUSE/);
  });
});

describe('parsePrometheusText', () => {
  it('reads names, escaped labels, special values and types', () => {
    const text = [
      '# HELP m help text',
      '# TYPE m gauge',
      'm{a="x",b="q\\"uote\\\\",} 3',
      'n 1.5e3 1700000000000',
      'o{le="+Inf"} +Inf',
    ].join('\n');
    const e = parsePrometheusText(text);
    expect(e.types).toEqual({ m: 'gauge' });
    expect(e.samples).toEqual([
      { name: 'm', labels: { a: 'x', b: 'q"uote\\' }, value: 3 },
      { name: 'n', labels: {}, value: 1500 },
      { name: 'o', labels: { le: '+Inf' }, value: Infinity },
    ]);
  });

  it.each(['m{a=x} 1', 'm{a="x} 1', '{a="x"} 1', 'm notanumber'])('rejects %s', (line) => {
    expect(() => parsePrometheusText(line)).toThrow();
  });
});
