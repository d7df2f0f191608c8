// SPDX-License-Identifier: Apache-2.0
/**
 * The upload proxy (`cdi uploadproxy`, CDI `pkg/uploadproxy`): checks the bearer token, waits
 * (bounded) for the token's PVC to have a ready upload server, and streams the request to it over
 * mTLS with backpressure, never holding the image in memory or on disk. CORS is open so a browser
 * page on another origin can use the form endpoints.
 */
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
  type Server,
  type ClientRequest,
} from 'node:http';
import {
  Agent as HttpsAgent,
  createServer as createHttpsServer,
  request as httpsRequest,
} from 'node:https';
import type { ServerOpts as SocketOpts } from 'node:net';
import { finished, pipeline as linkStreams } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { CryptoKey } from 'jose';
import { ContentTypes } from '../../common/contract.js';
import { CdiError, ErrorCodes, errorMessage, isCdiError } from '../../common/errors.js';
import { listenOn } from '../protocol/listen.js';
import type { Logger } from '../../common/logger.js';
import { parseBearer } from '../protocol/bearer.js';
import { REPR_DIGEST_HEADER } from '../protocol/repr-digest.js';
import type { Registry } from 'prom-client';
import { METRICS_PATH, sendMetrics } from '../../common/metrics-endpoint.js';
import { HEALTHZ_PATH, UPLOAD_TARGET_HEADER, uploadModeOf } from '../protocol/paths.js';
import { sendError, sendText } from '../protocol/status.js';
import { verifyUploadToken, type UploadTarget } from '../protocol/token.js';

/** Where a PVC's upload server is, and whether it accepts uploads yet. */
export interface UploadBackend {
  /** Base URL of the upload server (`https://cdi-upload-<pvc>.<ns>.svc:8443`). */
  readonly url: string;
  /** The PVC's `storage.pod.ready` annotation is `"true"`. */
  readonly ready: boolean;
  /** The PVC's content type; `archive` rewrites the path to `/upload-archive`. */
  readonly contentType?: string;
  /**
   * Name to send as SNI and check the server certificate against when `url` holds an address
   * (`cdi-upload-<pvc>.<ns>.svc`: upload server certificates name the Service, not its IP).
   */
  readonly servername?: string;
}

/**
 * Finds a PVC's upload server. Throws `CDI_UPLOAD_NOT_READY` (503) with CDI's message when the PVC
 * does not exist or is not an upload target (CDI's `urlResolver`/`uploadPossible` seam).
 */
export type UploadResolver = (target: UploadTarget, signal: AbortSignal) => Promise<UploadBackend>;

/** Client side of the mTLS connection to upload servers. */
export interface UpstreamTls {
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
  /** CA bundle that signs the upload servers' certificates. */
  readonly serverCaPem: string;
}

/** Options of {@link startUploadProxy}. */
export interface UploadProxyOptions {
  /** Serving certificate; plain HTTP when omitted (tests only). */
  readonly tls?: { readonly keyPem: string; readonly certPem: string };
  /** The API server's public key that signs tokens. */
  readonly tokenKey: CryptoKey;
  readonly resolver: UploadResolver;
  /** mTLS to the upload servers; required for `https://` backends. */
  readonly upstreamTls?: UpstreamTls;
  readonly host?: string;
  readonly port?: number;
  /** How long to wait for the upload server to become ready (CDI: 10 s). */
  readonly readyTimeoutMs?: number;
  /** Poll interval while waiting (CDI: 1 s). */
  readonly pollIntervalMs?: number;
  readonly logger: Logger;
  /** Served on `/metrics` when given. */
  readonly metrics?: Registry;
}

/** A running proxy. */
export interface UploadProxy {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

const FORWARDED_HEADERS = [
  'content-type',
  'content-length',
  'content-range',
  'user-agent',
  REPR_DIGEST_HEADER,
] as const;
const EXPOSED_HEADERS = 'Upload-Offset, Upload-Length, Range, Repr-Digest';
/**
 * Buffer size of the client's and the upload server's sockets (Node's default is 64 KiB): the
 * body is read and written in larger batches, with fewer pauses of the client's socket and fewer,
 * fuller TLS writes to the upload server (ADR 0036).
 */
const RELAY_HIGH_WATER_MARK = 512 * 1024;
const RELAY_SOCKET_OPTIONS: Pick<SocketOpts, 'highWaterMark'> = {
  highWaterMark: RELAY_HIGH_WATER_MARK,
};
/** Grace given to a client to finish sending after an early answer, before its socket is cut. */
const EARLY_ANSWER_GRACE_MS = 2000;

/** Starts the proxy; see the module comment. */
export async function startUploadProxy(options: UploadProxyOptions): Promise<UploadProxy> {
  const agent =
    options.upstreamTls === undefined
      ? undefined
      : new HttpsAgent({
          cert: options.upstreamTls.clientCertPem,
          key: options.upstreamTls.clientKeyPem,
          ca: options.upstreamTls.serverCaPem,
          minVersion: 'TLSv1.2',
          keepAlive: true,
          // The agent hands its options to tls.connect, which takes this one too (the Agent's
          // type does not list it).
          ...RELAY_SOCKET_OPTIONS,
        });
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    addCors(req, res);
    handle(req, res, options, agent).catch((err: unknown) => {
      if (!isCdiError(err))
        options.logger.error('upload proxy failure', { error: errorMessage(err) });
      sendError(res, err);
    });
  };
  const server: Server =
    options.tls === undefined
      ? createHttpServer({ highWaterMark: RELAY_HIGH_WATER_MARK }, handler)
      : createHttpsServer(
          {
            key: options.tls.keyPem,
            cert: options.tls.certPem,
            minVersion: 'TLSv1.2',
            highWaterMark: RELAY_HIGH_WATER_MARK,
          },
          handler,
        );
  server.requestTimeout = 0;
  const listening = await listenOn(server, {
    host: options.host,
    port: options.port,
    tls: options.tls !== undefined,
  });
  return {
    port: listening.port,
    url: listening.url,
    close: async () => {
      await listening.close();
      agent?.destroy();
    },
  };
}

/** CDI wraps the proxy in an "allow all" CORS handler; so do we. */
function addCors(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('access-control-allow-origin', req.headers.origin ?? '*');
  res.setHeader('vary', 'Origin');
  res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  options: UploadProxyOptions,
  agent: HttpsAgent | undefined,
): Promise<void> {
  const pathname = (req.url ?? '').split('?')[0];
  if (pathname === HEALTHZ_PATH) {
    sendText(res, 200, 'OK');
    return;
  }
  if (pathname === METRICS_PATH && options.metrics !== undefined) {
    await sendMetrics(options.metrics, res);
    return;
  }
  const mode = uploadModeOf(req.url);
  if (mode === undefined) {
    sendText(res, 404, '404 page not found');
    return;
  }
  if (req.method === 'OPTIONS') {
    res.writeHead(204, {
      'access-control-allow-methods': 'POST, PUT, PATCH, HEAD, OPTIONS',
      'access-control-allow-headers':
        req.headers['access-control-request-headers'] ??
        `Authorization, Content-Type, Content-Range, ${UPLOAD_TARGET_HEADER}`,
      'access-control-max-age': '600',
      'content-length': 0,
    });
    res.end();
    return;
  }
  const token = parseBearer(req.headers.authorization);
  const target = await verifyUploadToken(options.tokenKey, token);
  const wanted = req.headers[UPLOAD_TARGET_HEADER];
  if (typeof wanted === 'string' && wanted !== `${target.namespace}/${target.pvc}`) {
    throw new CdiError(
      ErrorCodes.UploadTokenInvalid,
      `upload token is for PVC ${target.namespace}/${target.pvc}, not ${wanted}`,
      {
        httpStatus: 401,
      },
    );
  }
  const backend = await waitReady(target, options, req);
  let path = req.url ?? '/';
  if (backend.contentType === ContentTypes.Archive && !mode.archive) {
    path = path.includes('alpha') ? '/v1alpha1/upload-archive' : '/v1beta1/upload-archive';
  }
  await forward({
    req,
    res,
    url: new URL(path, backend.url),
    servername: backend.servername,
    agent,
    logger: options.logger,
  });
}

/** Polls the resolver until the backend is ready (CDI: every 1 s for up to 10 s). */
async function waitReady(
  target: UploadTarget,
  options: UploadProxyOptions,
  req: IncomingMessage,
): Promise<UploadBackend> {
  const abort = new AbortController();
  const onClose = (): void => abort.abort();
  req.once('close', onClose);
  try {
    const deadline = Date.now() + (options.readyTimeoutMs ?? 10_000);
    for (;;) {
      const backend = await options.resolver(target, abort.signal);
      if (backend.ready) return backend;
      if (Date.now() >= deadline)
        throw new CdiError(
          ErrorCodes.UploadNotReady,
          `timed out waiting for the upload server of PVC ${target.namespace}/${target.pvc} to be ready`,
          {
            httpStatus: 503,
          },
        );
      await delay(options.pollIntervalMs ?? 1000, undefined, { signal: abort.signal });
    }
  } finally {
    req.off('close', onClose);
  }
}

interface ForwardOptions {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly servername: string | undefined;
  readonly agent: HttpsAgent | undefined;
  readonly logger: Logger;
}

/**
 * Streams the request to the upload server and its answer back, with backpressure both ways; a
 * client that drops destroys the upstream request, so the server sees the drop too and keeps what
 * it received for a resume. The server may answer before the body is complete (a 400 for an image
 * too large for its claim): that answer is forwarded as it is and the rest of the client's body
 * is read and discarded (for a grace period, then the connection is cut); a reset of the upstream
 * connection after its answer is not an error of the proxy.
 */
function forward({ req, res, url, servername, agent, logger }: ForwardOptions): Promise<void> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED_HEADERS) {
    const v = req.headers[name];
    if (typeof v === 'string') headers[name] = v;
  }
  return new Promise<void>((resolve) => {
    const https = url.protocol === 'https:';
    if (https && agent === undefined) {
      sendText(
        res,
        500,
        'error in upload-proxy: no client certificate configured for upload servers',
      );
      resolve();
      return;
    }
    const upstream: ClientRequest = (https ? httpsRequest : httpRequest)(url, {
      method: req.method ?? 'POST',
      headers,
      ...(https && agent !== undefined ? { agent } : {}),
      ...(https && servername !== undefined ? { servername } : {}),
    });
    let answered = false;
    upstream.on('response', (answer) => {
      answered = true;
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(answer.headers)) {
        if (
          v !== undefined &&
          k !== 'connection' &&
          k !== 'keep-alive' &&
          k !== 'transfer-encoding'
        )
          out[k] = v;
      }
      const early = !req.readableEnded;
      if (early) {
        // An early answer: stop forwarding and discard the client's rest, so that the answer
        // reaches it and the connection can be reused; a client still sending after the grace
        // is cut (closing with unread bytes would reset the connection under the answer).
        req.unpipe(upstream);
        req.resume();
        const cut = setTimeout(() => req.destroy(), EARLY_ANSWER_GRACE_MS);
        cut.unref();
        req.once('end', () => clearTimeout(cut));
        logger.info('upload server answered before the whole body arrived', {
          status: answer.statusCode,
        });
      }
      res.writeHead(answer.statusCode ?? 502, out);
      linkStreams(answer, res, () => {
        // The request was cut short: its connection cannot carry another one.
        if (early) upstream.destroy();
        resolve();
      });
    });
    upstream.on('error', (err) => {
      if (answered) return;
      logger.warn('upload server connection failed', { url: url.origin, error: errorMessage(err) });
      if (!res.headersSent) sendText(res, 502, `error in upload-proxy: ${errorMessage(err)}`);
      else res.destroy();
      resolve();
    });
    // Piped as received: chunks that queue while the upstream socket is busy reach it in one
    // writev, which the TLS layer gathers outside the JavaScript heap. Merging them here with
    // Buffer.concat doubled the buffers the garbage collector had to reclaim (ADR 0036).
    req.pipe(upstream);
    finished(req, { writable: false }, (err) => {
      // A client that went away before the answer: make the server see the same drop.
      if (err !== undefined && err !== null && !answered) upstream.destroy();
    });
  });
}
