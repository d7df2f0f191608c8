// SPDX-License-Identifier: Apache-2.0
import { createServer, type Server } from 'node:https';
import { Counter, Registry } from 'prom-client';
import { CLONE_PROGRESS_METRIC, IMPORT_PROGRESS_METRIC } from '../../common/contract.js';
import type { Logger } from '../../common/logger.js';
import { issueCertificate } from '../../common/x509.js';

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  readonly host: string;
  readonly port: number;
  /** Label value of `ownerUID` (OWNER_UID). */
  readonly ownerUid: string;
  /** The counter's name: the import one by default, CDI's clone one for clones. */
  readonly metric?: ProgressMetricName;
  readonly logger: Logger;
}

/** CDI's progress counters (the controller's scraper reads either). */
export type ProgressMetricName = typeof IMPORT_PROGRESS_METRIC | typeof CLONE_PROGRESS_METRIC;

/** The progress counter of one transfer and its exposition. */
export interface ProgressMetric {
  /** Raises the progress counter to `percent` (never lowers it). */
  setProgress(percent: number): void;
  /** The Prometheus text exposition of the counter. */
  render(): Promise<{ readonly contentType: string; readonly body: string }>;
}

/**
 * `kubevirt_cdi_import_progress_total{ownerUID}` (or the clone counter), which CDI's controller
 * scrapes for a DataVolume's progress (the importer's, and the upload server's on its own port).
 */
export function createProgressMetric(
  ownerUid: string,
  name: ProgressMetricName = IMPORT_PROGRESS_METRIC,
): ProgressMetric {
  const registry = new Registry();
  const counter = new Counter({
    name,
    help:
      name === CLONE_PROGRESS_METRIC
        ? 'The clone progress in percentage'
        : 'The import progress in percentage',
    labelNames: ['ownerUID'],
    registers: [registry],
  });
  const labels = { ownerUID: ownerUid };
  counter.inc(labels, 0);
  let current = 0;
  return {
    setProgress(percent: number): void {
      if (percent <= current) return;
      counter.inc(labels, percent - current);
      current = percent;
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

/** The running endpoint and its progress setter. */
export interface MetricsServer {
  /** Raises the progress counter to `percent` (never lowers it). */
  setProgress(percent: number): void;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves {@link createProgressMetric}'s counter over HTTPS with a self-signed certificate, as
 * CDI's importer does on :8443; the controller scrapes it with verification off.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const metric = createProgressMetric(options.ownerUid, options.metric);
  // A throw-away self-signed certificate: scrapers (CDI's controller) do not verify it.
  const { keyPem, certPem } = issueCertificate({
    commonName: 'cdi-importer',
    usage: 'server',
    validForMs: 30 * 86_400_000,
  });
  const server: Server = createServer({ key: keyPem, cert: certPem }, (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    metric.render().then(
      ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  options.logger.debug('metrics endpoint listening', { host: options.host, port });
  return {
    url: `https://${options.host}:${port}/metrics`,
    setProgress: (percent) => metric.setProgress(percent),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
