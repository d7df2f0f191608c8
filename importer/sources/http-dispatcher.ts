// SPDX-License-Identifier: Apache-2.0
/**
 * The one place that turns transport settings (CA dirs, INSECURE_TLS, proxies) into an undici
 * Dispatcher. The http source, the s3 source's custom endpoints and the registry source share it.
 */
import type { Dispatcher } from 'undici';

import type { Logger } from '../../common/logger.js';
import { parseNoProxy, proxyFor, type ProxyOptions } from './http-proxy.js';
import { loadCaBundle } from './tls-ca.js';

export type { ProxyOptions } from './http-proxy.js';

/** CDI's importer User-Agent; CDI's proxy tests look for it in the proxy's log. */
export const IMPORTER_USER_AGENT = 'cdi-golang-importer';

/** Options of {@link buildDispatcher}. */
export interface DispatcherOptions {
  /** Directory of PEM CA files added to the bundled roots (CDI `IMPORTER_CERT_DIR`). */
  readonly certDir?: string;
  /** Directory of PEM CA files for the proxy (CDI `IMPORTER_PROXY_CERT_DIR`); trusted everywhere, as in CDI. */
  readonly proxyCertDir?: string;
  /** Skip certificate verification (CDI `INSECURE_TLS`). */
  readonly insecureTls?: boolean;
  readonly proxy?: ProxyOptions;
  /** Sent on proxy CONNECT requests too; default {@link IMPORTER_USER_AGENT}. */
  readonly userAgent?: string;
  /** Connections per origin (parallel range reads); default 8. */
  readonly connections?: number;
  readonly logger?: Logger;
}

/** Keep-alive and timeouts of every connection: no body timeout of undici's own, we watch idleness. */
const AGENT_DEFAULTS = {
  keepAliveTimeout: 30_000,
  headersTimeout: 120_000,
  bodyTimeout: 0,
  connectTimeout: 30_000,
} as const;

/** The TLS settings every connection uses (a subset of Node's `tls.ConnectionOptions`). */
export interface TlsSettings {
  readonly minVersion: 'TLSv1.2';
  /** Bundled roots plus the cert dirs; absent = Node's default roots. */
  readonly ca?: string[];
  /** False with INSECURE_TLS. */
  readonly rejectUnauthorized: boolean;
}

/** TLS settings for the options: TLS 1.2 minimum (CDI), extra CAs, verification switch. */
export async function buildTlsOptions(options: DispatcherOptions): Promise<TlsSettings> {
  const ca = await loadCaBundle([options.certDir, options.proxyCertDir], options.logger);
  return {
    minVersion: 'TLSv1.2',
    rejectUnauthorized: options.insecureTls !== true,
    ...(ca === undefined ? {} : { ca }),
  };
}

/** True when a proxy is configured for http or https. */
export function hasProxy(proxy: ProxyOptions | undefined): proxy is ProxyOptions {
  return (proxy?.httpProxy ?? '') !== '' || (proxy?.httpsProxy ?? '') !== '';
}

/**
 * Builds the dispatcher for the settings: one Agent whose per-origin dispatcher is a plain pool,
 * or a ProxyAgent when {@link proxyFor} (Go's proxy rules, http-proxy.ts) says so. Proxies come
 * from the options only, never from `process.env` (configuration is parsed once, in
 * importer/config.ts). Plain-HTTP targets go through the proxy as absolute-URI requests and HTTPS
 * targets through a CONNECT tunnel, as Go's transport does. Close it when done.
 */
export async function buildDispatcher(options: DispatcherOptions = {}): Promise<Dispatcher> {
  // Loaded on first use: an HTTP import without a proxy never needs it (about 30 MiB of memory
  // and a tenth of a second of start-up; socket-attempt.ts).
  const { Agent, Client, Pool, ProxyAgent } = await import('undici');
  const tls = await buildTlsOptions(options);
  const connect = { ...tls };
  const base = { ...AGENT_DEFAULTS, connections: options.connections ?? 8, connect };
  const proxy = options.proxy;
  if (!hasProxy(proxy)) return new Agent(base);
  const noProxy = parseNoProxy(proxy.noProxy ?? '');
  const userAgent = options.userAgent ?? IMPORTER_USER_AGENT;
  return new Agent({
    ...base,
    factory: (origin: string | URL, opts: object): Dispatcher => {
      const uri = proxyFor(new URL(origin), proxy, noProxy);
      if (uri === undefined) {
        return base.connections === 1 ? new Client(origin, opts) : new Pool(origin, opts);
      }
      return new ProxyAgent({
        ...base,
        uri,
        proxyTunnel: false,
        requestTls: { ...tls },
        proxyTls: { ...tls },
        headers: { 'user-agent': userAgent },
      });
    },
  });
}
