// SPDX-License-Identifier: Apache-2.0
/**
 * The token API (`cdi apiserver`, CDI `pkg/apiserver`): an HTTPS server registered as the
 * aggregated API `upload.cdi.kubevirt.io/v1beta1`. It serves the discovery documents the
 * aggregator needs and one verb, `create` on `uploadtokenrequests`, answering synchronously with
 * `status.token` (what virtctl expects). Nothing is persisted. Who may create a token is decided
 * by an injected {@link Authorizer} (SubjectAccessReview in a cluster, ./kube-auth.ts).
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { CryptoKey } from 'jose';
import type { Registry } from 'prom-client';
import { METRICS_PATH, sendMetrics } from '../../common/metrics-endpoint.js';
import { CdiError, ErrorCodes, errorMessage, isCdiError } from '../../common/errors.js';
import { listenOn } from '../protocol/listen.js';
import type { Logger } from '../../common/logger.js';
import { UPLOAD_API } from '../protocol/paths.js';
import { signUploadToken } from '../protocol/token.js';

/** Who is asking (from the aggregator's X-Remote-* headers or a TokenReview). */
export interface RequestUser {
  readonly name: string;
  readonly groups: readonly string[];
  readonly uid?: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

/** A question for the authorizer: may `user` do `verb` on `resource` in `namespace`? */
export interface AccessQuestion {
  readonly user: RequestUser;
  readonly namespace: string;
  readonly verb: 'create';
  readonly group: string;
  readonly resource: string;
}

/** The answer of an {@link Authorizer}. */
export interface AccessDecision {
  readonly allowed: boolean;
  readonly reason?: string;
}

/** Decides whether a caller may create an upload token. */
export type Authorizer = (question: AccessQuestion) => Promise<AccessDecision>;

/** Turns a request into a user, or undefined when it carries no identity. */
export type Authenticator = (req: IncomingMessage) => Promise<RequestUser | undefined>;

/** Allows everything: only for tests and the explicit `--insecure-allow-all` flag. */
export const allowAll: Authorizer = () => Promise.resolve({ allowed: true });

/**
 * Reads the aggregator's `X-Remote-User` / `X-Remote-Group` / `X-Remote-Extra-*` headers, trusting
 * them only on a TLS connection whose client certificate the server verified (the front proxy's,
 * signed by the request-header CA given as `ca` to the server) and, when `allowedNames` is not
 * empty, whose common name is one of them (the cluster's `requestheader-allowed-names`); or always
 * when `trustHeaders`. Repeated headers are kept apart: one group per `X-Remote-Group` line.
 */
export function remoteHeaderAuthenticator(options: {
  readonly trustHeaders: boolean;
  readonly allowedNames?: readonly string[];
}): Authenticator {
  const allowed = options.allowedNames ?? [];
  return (req) => {
    const socket = req.socket as Partial<TLSSocket>;
    if (!options.trustHeaders) {
      if (socket.authorized !== true) return Promise.resolve(undefined);
      const subjectCn: string | string[] | undefined = socket.getPeerCertificate?.().subject?.CN;
      const cn = Array.isArray(subjectCn) ? subjectCn[0] : subjectCn;
      if (allowed.length > 0 && (cn === undefined || !allowed.includes(cn)))
        return Promise.resolve(undefined);
    }
    const headers = req.headersDistinct;
    const name = headers['x-remote-user']?.[0];
    if (name === undefined || name === '') return Promise.resolve(undefined);
    const groups = headers['x-remote-group'] ?? [];
    const extra: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (!k.startsWith('x-remote-extra-') || v === undefined) continue;
      extra[decodeURIComponent(k.slice('x-remote-extra-'.length))] = v;
    }
    return Promise.resolve({ name, groups, extra });
  };
}

/** Options of {@link startTokenApiServer}. */
export interface TokenApiOptions {
  /** Serving certificate; plain HTTP when omitted (tests only). */
  readonly tls?: {
    readonly keyPem: string;
    readonly certPem: string;
    /** The request-header (front proxy) CA: client certificates it signs make X-Remote-* trusted. */
    readonly clientCaPem?: string;
  };
  readonly signingKey: CryptoKey;
  /**
   * Admission webhooks by path (`/datavolume-mutate`): each answers a POSTed AdmissionReview.
   * The API server calls them; they need no user authentication (the review names the user).
   */
  readonly webhooks?: Readonly<Record<string, (review: unknown) => Promise<unknown>>>;
  readonly authenticator: Authenticator;
  readonly authorizer: Authorizer;
  readonly host?: string;
  readonly port?: number;
  readonly logger: Logger;
  /** Served on `/metrics` when given. */
  readonly metrics?: Registry;
}

/** A running token API server. */
export interface TokenApiServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

const BODY_LIMIT = 64 * 1024;
const GROUP_VERSION = `${UPLOAD_API.group}/${UPLOAD_API.version}`;
const CREATE_PATH = new RegExp(
  `^/apis/${UPLOAD_API.group.replace(/\./g, '\\.')}/${UPLOAD_API.version}/namespaces/([a-z0-9]([-a-z0-9]*[a-z0-9])?)/${UPLOAD_API.resource}/?$`,
);

/** Starts the server; see the module comment. */
export async function startTokenApiServer(options: TokenApiOptions): Promise<TokenApiServer> {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res, options).catch((err: unknown) => {
      if (!isCdiError(err)) options.logger.error('token API failure', { error: errorMessage(err) });
      sendStatus(res, statusCodeOf(err), errorMessage(err));
    });
  };
  const tls = options.tls;
  const server: Server =
    tls === undefined
      ? createHttpServer(handler)
      : createHttpsServer(
          {
            key: tls.keyPem,
            cert: tls.certPem,
            minVersion: 'TLSv1.2',
            ...(tls.clientCaPem === undefined
              ? {}
              : { ca: tls.clientCaPem, requestCert: true, rejectUnauthorized: false }),
          },
          handler,
        );
  const listening = await listenOn(server, {
    host: options.host,
    port: options.port,
    tls: tls !== undefined,
  });
  return {
    port: listening.port,
    url: listening.url,
    close: async () => {
      await listening.close();
    },
  };
}

function statusCodeOf(err: unknown): number {
  if (isCdiError(err) && err.httpStatus !== undefined) return err.httpStatus;
  return isCdiError(err) && err.code === ErrorCodes.InvalidArgument ? 400 : 500;
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  500: 'InternalError',
};

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** A Kubernetes `Status` failure object, what kubectl and client-go print. */
function sendStatus(res: ServerResponse, code: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, code, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: REASONS[code] ?? 'Unknown',
    code,
  });
}

const API_RESOURCE_LIST = {
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion: GROUP_VERSION,
  resources: [
    {
      name: UPLOAD_API.resource,
      singularName: 'uploadtokenrequest',
      namespaced: true,
      kind: UPLOAD_API.kind,
      verbs: ['create'],
    },
  ],
};

const API_GROUP = {
  kind: 'APIGroup',
  apiVersion: 'v1',
  name: UPLOAD_API.group,
  versions: [{ groupVersion: GROUP_VERSION, version: UPLOAD_API.version }],
  preferredVersion: { groupVersion: GROUP_VERSION, version: UPLOAD_API.version },
};

/** GET discovery documents and health endpoints; 404 for anything else. */
function serveDiscovery(req: IncomingMessage, res: ServerResponse, pathname: string): void {
  if (req.method === 'GET') {
    if (pathname === '/healthz' || pathname === '/readyz' || pathname === '/livez') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    } else if (pathname === '/apis')
      sendJson(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [API_GROUP] });
    else if (pathname === `/apis/${UPLOAD_API.group}`) sendJson(res, 200, API_GROUP);
    else if (pathname === `/apis/${GROUP_VERSION}`) sendJson(res, 200, API_RESOURCE_LIST);
    else sendStatus(res, 404, `the server could not find the requested resource`);
    return;
  }
  sendStatus(res, 404, 'the server could not find the requested resource');
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  options: TokenApiOptions,
): Promise<void> {
  const pathname = (req.url ?? '/').split('?')[0] ?? '/';
  const webhook = options.webhooks?.[pathname];
  if (webhook !== undefined && req.method === 'POST') {
    await serveWebhook(req, res, webhook);
    return;
  }
  const match = CREATE_PATH.exec(pathname);
  if (match === null && pathname === METRICS_PATH && options.metrics !== undefined) {
    await sendMetrics(options.metrics, res);
    return;
  }
  if (match === null) {
    serveDiscovery(req, res, pathname);
    return;
  }
  if (req.method !== 'POST') {
    sendStatus(
      res,
      405,
      `${req.method ?? ''} is not supported on ${UPLOAD_API.resource}, only create`,
    );
    return;
  }
  const namespace = match[1] ?? '';
  const user = await options.authenticator(req);
  if (user === undefined) {
    sendStatus(res, 401, 'Unauthorized');
    return;
  }
  const request = parseTokenRequest(await readBody(req), namespace);
  const decision = await options.authorizer({
    user,
    namespace,
    verb: 'create',
    group: UPLOAD_API.group,
    resource: UPLOAD_API.resource,
  });
  if (!decision.allowed) {
    // CDI answers 401 with the reason for a denied review.
    sendStatus(
      res,
      401,
      decision.reason === undefined || decision.reason === '' ? 'Unauthorized' : decision.reason,
    );
    return;
  }
  const token = await signUploadToken(options.signingKey, { namespace, pvc: request.pvcName });
  options.logger.info('upload token issued', { namespace, pvc: request.pvcName, user: user.name });
  sendJson(res, 201, {
    apiVersion: GROUP_VERSION,
    kind: UPLOAD_API.kind,
    metadata: { ...request.metadata, namespace, creationTimestamp: null },
    spec: { pvcName: request.pvcName },
    status: { token },
  });
}

interface TokenRequestBody {
  readonly pvcName: string;
  readonly metadata: Readonly<Record<string, unknown>>;
}

function badRequest(message: string): CdiError {
  return new CdiError(ErrorCodes.InvalidArgument, message, { httpStatus: 400 });
}

/** Validates an UploadTokenRequest body. */
export function parseTokenRequest(text: string, namespace: string): TokenRequestBody {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw badRequest(`request body is not JSON: ${errorMessage(err)}`);
  }
  if (typeof body !== 'object' || body === null) throw badRequest('request body is not an object');
  const o = body as { kind?: unknown; spec?: unknown; metadata?: unknown };
  if (o.kind !== undefined && o.kind !== UPLOAD_API.kind)
    throw badRequest(`kind must be ${UPLOAD_API.kind}`);
  const spec = o.spec as { pvcName?: unknown } | undefined;
  const pvcName = spec?.pvcName;
  if (
    typeof pvcName !== 'string' ||
    !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(pvcName) ||
    pvcName.length > 253
  )
    throw badRequest('spec.pvcName must name a PersistentVolumeClaim');
  const metadata =
    typeof o.metadata === 'object' && o.metadata !== null
      ? (o.metadata as Record<string, unknown>)
      : {};
  const ns = metadata['namespace'];
  if (ns !== undefined && ns !== namespace)
    throw badRequest(
      `metadata.namespace ${JSON.stringify(ns)} does not match the request namespace ${namespace}`,
    );
  return { pvcName, metadata };
}

/** An AdmissionReview carries the object and the old one: up to twice etcd's 1.5 MiB. */
const REVIEW_BODY_LIMIT = 3 * 1024 * 1024;

async function serveWebhook(
  req: IncomingMessage,
  res: ServerResponse,
  webhook: (review: unknown) => Promise<unknown>,
): Promise<void> {
  let review: unknown;
  try {
    review = JSON.parse(await readBody(req, REVIEW_BODY_LIMIT));
  } catch (err) {
    if (isCdiError(err)) throw err;
    throw new CdiError(ErrorCodes.InvalidArgument, 'the AdmissionReview is not JSON', {
      httpStatus: 400,
    });
  }
  sendJson(res, 200, await webhook(review));
}

async function readBody(req: IncomingMessage, limit: number = BODY_LIMIT): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit)
      throw new CdiError(ErrorCodes.InvalidArgument, 'request body too large', { httpStatus: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
