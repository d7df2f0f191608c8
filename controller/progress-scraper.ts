// SPDX-License-Identifier: Apache-2.0
/**
 * Reads an importer's progress from its Prometheus endpoint, as CDI's DataVolume controller does
 * (`updateProgressUsingPod`): `GET https://<podIP>:8443/metrics` with verification off (the
 * importer's certificate is self-signed), a 2 s timeout, and the counter
 * `kubevirt_cdi_import_progress_total{ownerUID="<uid>"}` formatted `%.2f%%`. Any failure means
 * "no new progress", never an error: a pod that is starting simply has no endpoint yet.
 */
import { request } from 'node:https';
import { IMPORT_PROGRESS_METRIC, METRICS_PORT, UPLOAD_REFUSED_METRIC } from '../common/contract.js';

/** Longest body read from a metrics endpoint. */
const MAX_METRICS_BYTES = 1024 * 1024;
/** CDI's scrape timeout. */
const SCRAPE_TIMEOUT_MS = 2000;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Finds the progress of `ownerUid` in a metrics text and formats it (`45.67%`), or undefined. */
export function parseProgress(metricsText: string, ownerUid: string): string | undefined {
  const re = new RegExp(
    `^(?:${IMPORT_PROGRESS_METRIC}|kubevirt_cdi_clone_progress_total)\\{[^}]*ownerUID="${escapeRegExp(ownerUid)}"[^}]*\\} ([0-9.eE+-]+)`,
    'm',
  );
  const m = re.exec(metricsText);
  if (m === null) return undefined;
  const value = Number(m[1]);
  if (!Number.isFinite(value) || value < 0) return undefined;
  return `${Math.min(value, 100).toFixed(2)}%`;
}

/**
 * The reason of an upload server's last refused upload (`kubevirt_cdi_upload_refused_info`), or
 * undefined: label values are unescaped as the text format defines (`\\`, `\"`, `\n`).
 */
export function parseUploadRefusal(metricsText: string): string | undefined {
  const re = new RegExp(`^${UPLOAD_REFUSED_METRIC}\\{message="((?:[^"\\\\]|\\\\.)*)"\\} 1$`, 'm');
  const m = re.exec(metricsText);
  if (m === null) return undefined;
  return (m[1] ?? '').replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c));
}

/** What one scrape of a transfer pod tells. */
export interface TransferScrape {
  /** `45.67%`, when known. */
  readonly progress?: string;
  /** Why the upload server refused the last upload, if it did. */
  readonly refusal?: string;
}

/** Options of {@link scrapeProgress}. */
export interface ScrapeOptions {
  readonly podIp: string;
  readonly ownerUid: string;
  /** Defaults to the importer's metrics port 8443. */
  readonly port?: number;
  readonly timeoutMs?: number;
}

/** Fetches the metrics text of a pod; undefined on any failure. */
export function fetchMetrics(
  podIp: string,
  port: number,
  timeoutMs: number,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: podIp,
        port,
        path: '/metrics',
        method: 'GET',
        rejectUnauthorized: false,
        timeout: timeoutMs,
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          resolve(undefined);
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_METRICS_BYTES) {
            req.destroy();
            resolve(undefined);
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** Scrapes and parses one importer's progress; undefined when unknown. */
export async function scrapeProgress(options: ScrapeOptions): Promise<string | undefined> {
  return (await scrapeTransfer(options)).progress;
}

/** Scrapes a transfer pod once: its progress and, for an upload server, its last refusal. */
export async function scrapeTransfer(options: ScrapeOptions): Promise<TransferScrape> {
  const text = await fetchMetrics(
    options.podIp,
    options.port ?? METRICS_PORT,
    options.timeoutMs ?? SCRAPE_TIMEOUT_MS,
  );
  if (text === undefined) return {};
  const progress = parseProgress(text, options.ownerUid);
  const refusal = parseUploadRefusal(text);
  return {
    ...(progress === undefined ? {} : { progress }),
    ...(refusal === undefined ? {} : { refusal }),
  };
}
