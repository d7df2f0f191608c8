// SPDX-License-Identifier: Apache-2.0
/**
 * The Google Cloud Storage data source (CDI `pkg/importer/gcs-datasource.go`): objects read
 * through the XML API (`ENDPOINT/BUCKET/OBJECT`, what Google's Go client reads with), on the http
 * source's machinery: HEAD, ranged and resumable GETs pinned to the ETag, parallel segments,
 * the stall budget.
 *
 * Sequence of phases:
 * 1. `new GcsSource(options)`: parses the URL (rules in gcs-url.ts), no I/O.
 * 2. `info()`: builds the dispatcher (CA dir, INSECURE_TLS, proxy); with a key file, signs a JWT
 *    with the service-account key and exchanges it at the key's `token_uri` for an access token
 *    (gcs-token.ts), sent as `Authorization: Bearer` to the object's origin only; without one,
 *    the requests are anonymous (public objects), as CDI's `option.WithoutAuthentication()`.
 *    Then the http source's `info()`.
 * 3. `stream()` once, or `readRange()` calls: the http source's.
 * 4. `close()`: closes both; idempotent.
 *
 * The token is fetched once per import. Google's tokens last an hour: a download that must
 * resume after that is refused (401) and the pod's restart starts over with a fresh token.
 */
import type { Readable } from 'node:stream';

import type { Dispatcher } from 'undici';

import { CdiError, ErrorCodes } from '../../common/errors.js';
import { silentLogger, type Logger } from '../../common/logger.js';
import { buildDispatcher, type ProxyOptions } from './http-dispatcher.js';
import { HttpSource } from './http.js';
import { fetchAccessToken, loadServiceAccountKey } from './gcs-token.js';
import { gcsObjectUrl, parseGcsUrl, type GcsLocation } from './gcs-url.js';
import type { DataSource, SourceInfo, TransportOptions } from './types.js';

/** Options of {@link GcsSource}. */
export interface GcsSourceOptions {
  /** `gs://bucket/object`, or an `http(s)://` object URL (see gcs-url.ts). */
  readonly url: string;
  /** A service-account key JSON file (CDI `GOOGLE_APPLICATION_CREDENTIALS`); absent: anonymous. */
  readonly credentialsFile?: string;
  /** Replaces Google's endpoint (`STORAGE_EMULATOR_HOST`, `host:port` or a URL). */
  readonly endpoint?: string;
  /** CA dir, INSECURE_TLS, extra headers and limits, as for the http source. */
  readonly transport?: TransportOptions;
  readonly proxy?: ProxyOptions;
  readonly logger?: Logger;
  readonly maxRetries?: number;
  readonly retryDelayMs?: number;
}

/** See the module comment. */
export class GcsSource implements DataSource {
  private readonly location: GcsLocation;
  private readonly options: GcsSourceOptions;
  private readonly logger: Logger;
  private readonly where: string;
  private dispatcher: Dispatcher | undefined;
  private http: HttpSource | undefined;
  private closed = false;

  constructor(options: GcsSourceOptions) {
    this.location = parseGcsUrl(options.url, options.endpoint);
    this.options = options;
    this.where = `gs://${this.location.bucket}/${this.location.object}`;
    this.logger = (options.logger ?? silentLogger).child({ source: 'gcs', object: this.where });
  }

  async info(signal: AbortSignal): Promise<SourceInfo> {
    if (this.closed) throw new CdiError(ErrorCodes.Internal, 'gcs source used after close()');
    if (this.http !== undefined) throw new CdiError(ErrorCodes.Internal, 'gcs info() twice');
    const o = this.options;
    const t = o.transport ?? {};
    const dispatcher = await buildDispatcher({
      ...(t.certDir === undefined ? {} : { certDir: t.certDir }),
      ...(t.insecureTls === undefined ? {} : { insecureTls: t.insecureTls }),
      ...(o.proxy === undefined ? {} : { proxy: o.proxy }),
      logger: this.logger,
    });
    this.dispatcher = dispatcher;
    const headers = [...(t.extraHeaders ?? [])];
    if (o.credentialsFile !== undefined && o.credentialsFile !== '') {
      const key = await loadServiceAccountKey(o.credentialsFile);
      const token = await fetchAccessToken(key, dispatcher, signal);
      this.logger.debug('access token obtained', { account: key.clientEmail });
      headers.push(`Authorization: Bearer ${token.token}`);
    } else {
      this.logger.debug('anonymous access');
    }
    // Access keys are S3's; the bearer token is the only credential a GCS request carries.
    this.http = new HttpSource({
      url: gcsObjectUrl(this.location),
      transport: {
        ...(t.certDir === undefined ? {} : { certDir: t.certDir }),
        ...(t.insecureTls === undefined ? {} : { insecureTls: t.insecureTls }),
        ...(t.limits === undefined ? {} : { limits: t.limits }),
        extraHeaders: headers,
      },
      dispatcher,
      logger: this.logger,
      ...(o.maxRetries === undefined ? {} : { maxRetries: o.maxRetries }),
      ...(o.retryDelayMs === undefined ? {} : { retryDelayMs: o.retryDelayMs }),
    });
    const info = await this.http.info(signal);
    return { ...info, displayName: this.where };
  }

  private opened(): HttpSource {
    if (this.http === undefined || this.closed) {
      throw new CdiError(ErrorCodes.Internal, `gcs source ${this.where} used before info()`);
    }
    return this.http;
  }

  async stream(signal: AbortSignal): Promise<Readable> {
    return this.opened().stream(signal);
  }

  async readRange(offset: number, length: number, signal: AbortSignal): Promise<Buffer> {
    return this.opened().readRange(offset, length, signal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.http?.close();
    await this.dispatcher?.destroy();
  }
}
