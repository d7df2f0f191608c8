// SPDX-License-Identifier: Apache-2.0
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Counter, Registry } from 'prom-client';
import { IMPORT_PROGRESS_METRIC } from '../../common/contract.js';
import type { Logger } from '../../common/logger.js';

const execFileAsync = promisify(execFile);

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  readonly host: string;
  readonly port: number;
  /** Label value of `ownerUID` (OWNER_UID). */
  readonly ownerUid: string;
  readonly logger: Logger;
}

/** The running endpoint and its progress setter. */
export interface MetricsServer {
  /** Raises the progress counter to `percent` (never lowers it). */
  setProgress(percent: number): void;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `kubevirt_cdi_import_progress_total{ownerUID}` over HTTPS with a self-signed
 * certificate, as CDI's importer does on :8443; the controller scrapes it with verification off.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const registry = new Registry();
  const counter = new Counter({
    name: IMPORT_PROGRESS_METRIC,
    help: 'The import progress in percentage',
    labelNames: ['ownerUID'],
    registers: [registry],
  });
  const labels = { ownerUID: options.ownerUid };
  counter.inc(labels, 0);
  let current = 0;
  const { key, cert } = await selfSignedCertificate();
  const server: Server = createServer({ key, cert }, (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
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
    setProgress(percent: number): void {
      if (percent <= current) return;
      counter.inc(labels, percent - current);
      current = percent;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A throw-away self-signed certificate made with openssl (node:crypto cannot issue X.509). */
async function selfSignedCertificate(): Promise<{ key: Buffer; cert: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'cdi-metrics-'));
  try {
    const keyPath = join(dir, 'tls.key');
    const certPath = join(dir, 'tls.crt');
    await execFileAsync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '30',
      '-subj',
      '/CN=cdi-importer',
    ]);
    return { key: await readFile(keyPath), cert: await readFile(certPath) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
