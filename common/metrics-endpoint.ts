// SPDX-License-Identifier: Apache-2.0
/**
 * `/metrics` for the components that serve no gauges of their own (token API, upload proxy):
 * Node's process metrics in the Prometheus text format, as CDI's Go components expose theirs.
 */
import type { ServerResponse } from 'node:http';
import { Registry, collectDefaultMetrics } from 'prom-client';

/** Path of every component's Prometheus endpoint. */
export const METRICS_PATH = '/metrics';

/** A registry holding the process metrics. */
export function processMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Writes the registry's exposition to `res`. */
export async function sendMetrics(registry: Registry, res: ServerResponse): Promise<void> {
  const text = await registry.metrics();
  res.writeHead(200, { 'content-type': registry.contentType });
  res.end(text);
}
