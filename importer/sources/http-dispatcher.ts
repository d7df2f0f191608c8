// SPDX-License-Identifier: Apache-2.0
/**
 * The one place that turns transport settings (CA dirs, INSECURE_TLS, proxies) into an undici
 * Dispatcher. The http source, the s3 source's custom endpoints and the registry source share it.
 */
import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici';

import type { Logger } from '../../common/logger.js';
import { loadCaBundle } from './tls-ca.js';

/** CDI's importer User-Agent; CDI's proxy tests look for it in the proxy's log. */
export const IMPORTER_USER_AGENT = 'cdi-golang-importer';

/** Proxy settings (CDIConfig `importProxy`, env `http_proxy`/`https_proxy`/`no_proxy`). */
export interface ProxyOptions {
  /** Proxy for `http://` targets, e.g. `http://user:pass@proxy:3128`. */
  readonly httpProxy?: string;
  /** Proxy for `https://` targets (tunnelled with CONNECT). */
  readonly httpsProxy?: string;
  /** Comma-separated hosts (`.suffix`, `host:port`, `*`) that bypass the proxy. */
  readonly noProxy?: string;
}

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

function hasProxy(proxy: ProxyOptions | undefined): proxy is ProxyOptions {
  return (proxy?.httpProxy ?? '') !== '' || (proxy?.httpsProxy ?? '') !== '';
}

/**
 * Builds the dispatcher for the settings: a plain Agent, or an EnvHttpProxyAgent fed only from
 * the options (never from `process.env`: configuration is parsed once, in importer/config.ts).
 * Plain-HTTP targets go through the proxy as absolute-URI requests and HTTPS targets through a
 * CONNECT tunnel, as Go's transport does. Close it when done.
 */
export async function buildDispatcher(options: DispatcherOptions = {}): Promise<Dispatcher> {
  const tls = await buildTlsOptions(options);
  const connect = { ...tls };
  const base = { ...AGENT_DEFAULTS, connections: options.connections ?? 8, connect };
  if (!hasProxy(options.proxy)) return new Agent(base);
  return new EnvHttpProxyAgent({
    ...base,
    // Empty strings, not undefined: undefined would make undici fall back to process.env.
    httpProxy: options.proxy.httpProxy ?? '',
    httpsProxy: options.proxy.httpsProxy ?? '',
    noProxy: options.proxy.noProxy ?? '',
    proxyTunnel: false,
    requestTls: { ...tls },
    proxyTls: { ...tls },
    headers: { 'user-agent': options.userAgent ?? IMPORTER_USER_AGENT },
  });
}
