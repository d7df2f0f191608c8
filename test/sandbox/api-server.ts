// SPDX-License-Identifier: Apache-2.0
/**
 * The HTTPS front end of the sandbox's Kubernetes API: bearer-token authentication, discovery,
 * the REST routes of every resource type (namespaced and cluster-scoped, `/status`, `pods/log`),
 * watches, server-side Table printing for kubectl, and APIService aggregation (requests for an
 * aggregated group/version are proxied to the Service named by its APIService object).
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../common/logger.js';
import { ApiStatusError, badRequest, StatusReasons } from './api-errors.js';
import { aggregatedGroups, aggregationTarget, proxyRequest } from './aggregation.js';
import { answerReview, reviewOf, SANDBOX_USER } from './reviews.js';
import { coreVersions, groupDoc, groupList, resourceList, versionInfo } from './discovery.js';
import type { ObjectApi } from './object-api.js';
import type { KObject } from './object.js';
import { openApiV3, serveOpenApiV2 } from './openapi.js';
import { PatchError } from './patch.js';
import {
  APPLY_PATCH_CONTENT_TYPE,
  contentTypeOf,
  deleteOptions,
  fieldManager,
  fieldValidation,
  parseRoute,
  queryFlag,
  readObject,
  send,
  type Route,
} from './http-io.js';
import type { ResourceType } from './resources.js';
import { SelectorError } from './selectors.js';
import { toTable, wantsTable } from './table.js';
import { serveWatch } from './watch.js';
import { MIN_EXPIRATION_S, type TokenIssuer, type UserInfo } from './tokens.js';
import { getPath, isRecord } from './object.js';

/** Options of {@link ApiServer}. */
export interface ApiServerOptions {
  readonly api: ObjectApi;
  readonly token: string;
  /** Issues and verifies service-account tokens. */
  readonly tokens: TokenIssuer;
  readonly tls: { readonly key: string; readonly cert: string };
  /** Client certificate presented to aggregated API servers (CN `front-proxy-client`). */
  readonly frontProxy: { readonly key: string; readonly cert: string };
  readonly log: Logger;
  /** Host file of a pod container's log, for `pods/<name>/log`. */
  readonly podLogPath: (
    namespace: string,
    name: string,
    container: string | undefined,
  ) => string | undefined;
}

const DEFAULT_WATCH_TIMEOUT_S = 1800;

/** The server. */
export class ApiServer {
  readonly #opts: ApiServerOptions;
  readonly #server: Server;
  readonly #watches = new Set<{ stop: () => void }>();

  constructor(opts: ApiServerOptions) {
    this.#opts = opts;
    this.#server = createServer({ key: opts.tls.key, cert: opts.tls.cert }, (req, res) => {
      this.#handle(req, res).catch((err: unknown) => this.#fail(res, err));
    });
  }

  /** Listens on 127.0.0.1 (port 0 unless given) and returns the base URL. */
  async listen(port = 0): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => resolve());
    });
    return `https://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Ends every open watch, as an API server restart or a watch timeout would. */
  closeWatches(): void {
    for (const w of [...this.#watches]) w.stop();
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    this.closeWatches();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #fail(res: ServerResponse, err: unknown): void {
    let status: ApiStatusError;
    if (err instanceof ApiStatusError) status = err;
    else if (err instanceof SelectorError || err instanceof PatchError)
      status = badRequest(err.message);
    else {
      this.#opts.log.error('api request failed', {
        error: err instanceof Error ? err.stack : String(err),
      });
      status = new ApiStatusError(
        500,
        StatusReasons.InternalError,
        err instanceof Error ? err.message : String(err),
      );
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    send(res, status.statusCode, status.toStatus());
  }

  /** Who the request's bearer token is: the admin, a service account, or nobody. */
  #authenticate(req: IncomingMessage): UserInfo | undefined {
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Bearer ')) return undefined;
    return this.#userOfToken(header.slice('Bearer '.length).trim());
  }

  #userOfToken(token: string): UserInfo | undefined {
    if (this.#isToken(token)) return { username: SANDBOX_USER.name, groups: SANDBOX_USER.groups };
    return this.#opts.tokens.verify(token);
  }

  #isToken(given: string, prefix = ''): boolean {
    const expected = Buffer.from(`${prefix}${this.#opts.token}`);
    const bytes = Buffer.from(given);
    return bytes.length === expected.length && timingSafeEqual(bytes, expected);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://sandbox');
    const segments = url.pathname
      .split('/')
      .filter((s) => s !== '')
      .map(decodeURIComponent);
    const method = req.method ?? 'GET';
    if (['/healthz', '/readyz', '/livez'].includes(url.pathname)) {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      return;
    }
    const user = this.#authenticate(req);
    if (user === undefined) {
      send(
        res,
        401,
        new ApiStatusError(401, StatusReasons.Unauthorized, 'Unauthorized').toStatus(),
      );
      return;
    }
    this.#opts.log.debug('api', { method, url: req.url });
    if (segments[0] === 'apis' && segments.length >= 3) {
      const target = aggregationTarget(this.#opts.api, segments[1] ?? '', segments[2] ?? '');
      if (target !== undefined) {
        const identity = {
          user: SANDBOX_USER.name,
          groups: SANDBOX_USER.groups,
          clientCert: this.#opts.frontProxy,
        };
        proxyRequest(req, res, { target, identity }, (err) => this.#fail(res, err));
        return;
      }
    }
    if (url.pathname === '/apis/authentication.k8s.io/v1/selfsubjectreviews' && method === 'POST') {
      // `kubectl auth whoami`: who the request's credentials are.
      send(res, 201, {
        kind: 'SelfSubjectReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        status: {
          userInfo: {
            username: user.username,
            ...(user.uid === undefined ? {} : { uid: user.uid }),
            groups: [...user.groups],
          },
        },
      });
      return;
    }
    const review = reviewOf(segments);
    if (review !== undefined) {
      const body = await readObject(req);
      send(
        res,
        201,
        answerReview(review, method, body, (t) => this.#userOfToken(t)),
      );
      return;
    }
    if (url.pathname === '/openapi/v2') {
      serveOpenApiV2(req, res);
      return;
    }
    const discovery = this.#discovery(segments, url.pathname);
    if (discovery !== undefined) {
      if (discovery === null)
        throw new ApiStatusError(
          404,
          StatusReasons.NotFound,
          'the server could not find the requested resource',
        );
      send(res, 200, discovery);
      return;
    }
    const route = parseRoute(segments);
    if (route === undefined)
      throw new ApiStatusError(
        404,
        StatusReasons.NotFound,
        'the server could not find the requested resource',
      );
    await this.#resource(req, res, route, url.searchParams);
  }

  /** Discovery document for the path; null for a discovery path with nothing; undefined for others. */
  #discovery(
    segments: readonly string[],
    pathname: string,
  ): Record<string, unknown> | null | undefined {
    const { types } = this.#opts.api;
    if (pathname === '/version') return versionInfo();
    if (pathname === '/api') return coreVersions();
    if (pathname === '/apis') return groupList(types, aggregatedGroups(this.#opts.api));
    if (segments[0] === 'api' && segments.length === 2)
      return resourceList(types, '', segments[1] ?? '') ?? null;
    if (segments[0] === 'apis' && segments.length === 2)
      return groupDoc(types, segments[1] ?? '') ?? null;
    if (segments[0] === 'apis' && segments.length === 3)
      return resourceList(types, segments[1] ?? '', segments[2] ?? '') ?? null;
    if (pathname.startsWith('/openapi/v3')) return openApiV3(types, pathname) ?? null;
    if (segments[0] === 'openapi') return null;
    return undefined;
  }

  async #resource(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    query: URLSearchParams,
  ): Promise<void> {
    const { api } = this.#opts;
    const type = api.type(route.group, route.version, route.plural);
    const method = req.method ?? 'GET';
    const ns = type.namespaced
      ? (route.namespace ?? (route.name === undefined ? undefined : 'default'))
      : '';
    if (type.namespaced && route.namespace === undefined && route.name !== undefined) {
      throw new ApiStatusError(
        404,
        StatusReasons.NotFound,
        'the server could not find the requested resource',
      );
    }
    const out = (status: number, obj: KObject): void => {
      const presented = api.present(type, obj, route.version);
      send(res, status, wantsTable(req.headers.accept) ? toTable(type, [presented]) : presented);
    };
    if (route.name === undefined) {
      await this.#collection({ req, res, type, route, query, ns });
      return;
    }
    const sub = route.subresource;
    if (sub === 'token' && type.plural === 'serviceaccounts' && type.group === '') {
      if (method !== 'POST')
        throw new ApiStatusError(
          405,
          StatusReasons.MethodNotAllowed,
          `method ${method} is not allowed`,
        );
      send(res, 201, this.#tokenRequest(type, ns ?? '', route.name, await readObject(req)));
      return;
    }
    if (
      sub !== undefined &&
      sub !== 'status' &&
      !(sub === 'log' && type.plural === 'pods' && type.group === '')
    ) {
      throw new ApiStatusError(
        404,
        StatusReasons.NotFound,
        'the server could not find the requested resource',
      );
    }
    if (sub === 'status' && !type.statusSubresource) {
      throw new ApiStatusError(
        404,
        StatusReasons.NotFound,
        'the server could not find the requested resource',
      );
    }
    const namespace = ns ?? '';
    const name = route.name;
    if (sub === 'log') {
      api.get(type, namespace, name);
      const file = this.#opts.podLogPath(namespace, name, query.get('container') ?? undefined);
      const text = file === undefined ? '' : await readFile(file, 'utf8').catch(() => '');
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end(text);
      return;
    }
    switch (method) {
      case 'GET':
        out(200, api.get(type, namespace, name));
        return;
      case 'PUT': {
        const body = await readObject(req);
        out(
          200,
          api.update(type, namespace, name, body, {
            ...(sub === 'status' ? { subresource: 'status' as const } : {}),
            ...fieldValidation(query),
            ...fieldManager(query),
          }),
        );
        return;
      }
      case 'PATCH': {
        const body = await readObject(req);
        const contentType = contentTypeOf(req);
        if (contentType === APPLY_PATCH_CONTENT_TYPE) {
          const manager = fieldManager(query).fieldManager;
          if (manager === undefined)
            throw badRequest(
              'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            );
          const existed = api.find(type, namespace, name) !== undefined;
          const applied = api.apply(
            type,
            {
              namespace,
              name,
              ...(sub === 'status' ? { subresource: 'status' as const } : {}),
              ...fieldValidation(query),
              fieldManager: manager,
              force: queryFlag(query, 'force'),
            },
            body,
          );
          out(existed ? 200 : 201, applied);
          return;
        }
        out(
          200,
          api.patch(
            type,
            {
              namespace,
              name,
              ...(sub === 'status' ? { subresource: 'status' as const } : {}),
              ...fieldValidation(query),
              ...fieldManager(query),
            },
            contentType,
            body,
          ),
        );
        return;
      }
      case 'DELETE': {
        const body = await readObject(req);
        out(200, api.delete(type, namespace, name, deleteOptions(body, query)));
        return;
      }
      default:
        throw new ApiStatusError(
          405,
          StatusReasons.MethodNotAllowed,
          `method ${method} is not allowed`,
        );
    }
  }

  /** `serviceaccounts/NAME/token`: a TokenRequest answered with a token for that account. */
  #tokenRequest(
    type: ResourceType,
    namespace: string,
    name: string,
    body: unknown,
  ): Record<string, unknown> {
    const sa = this.#opts.api.get(type, namespace, name);
    const spec = getPath(body, ['spec']);
    const requested = isRecord(spec) ? spec['expirationSeconds'] : undefined;
    const expirationSeconds = typeof requested === 'number' ? requested : undefined;
    if (expirationSeconds !== undefined && expirationSeconds < MIN_EXPIRATION_S) {
      throw new ApiStatusError(
        422,
        StatusReasons.Invalid,
        `TokenRequest.authentication.k8s.io "${name}" is invalid: spec.expirationSeconds: Invalid value: ${expirationSeconds}: may not specify a duration less than 10 minutes`,
      );
    }
    const audiences =
      isRecord(spec) && Array.isArray(spec['audiences'])
        ? spec['audiences'].filter((a): a is string => typeof a === 'string')
        : [];
    const { token, expiration } = this.#opts.tokens.issue({
      namespace,
      name,
      uid: sa.metadata.uid ?? '',
      audiences,
      ...(expirationSeconds === undefined ? {} : { expirationSeconds }),
    });
    const meta = getPath(body, ['metadata']);
    return {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { ...(isRecord(meta) ? meta : {}), name, namespace, creationTimestamp: null },
      spec: {
        ...(isRecord(spec) ? spec : {}),
        audiences,
        expirationSeconds: expirationSeconds ?? 3600,
      },
      status: {
        token,
        expirationTimestamp: expiration.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      },
    };
  }

  async #collection(ctx: {
    req: IncomingMessage;
    res: ServerResponse;
    type: ResourceType;
    route: Route;
    query: URLSearchParams;
    ns: string | undefined;
  }): Promise<void> {
    const { req, res, type, route, query, ns } = ctx;
    const { api } = this.#opts;
    const method = req.method ?? 'GET';
    const selectors = {
      ...(query.get('labelSelector') === null ? {} : { label: query.get('labelSelector') ?? '' }),
      ...(query.get('fieldSelector') === null ? {} : { field: query.get('fieldSelector') ?? '' }),
    };
    if (method === 'GET' && queryFlag(query, 'watch')) {
      const timeout = Number(query.get('timeoutSeconds') ?? DEFAULT_WATCH_TIMEOUT_S);
      const watch = serveWatch(
        api,
        {
          type,
          version: route.version,
          namespace: ns,
          resourceVersion: query.get('resourceVersion') ?? undefined,
          labelSelector: selectors.label,
          fieldSelector: selectors.field,
          bookmarks: queryFlag(query, 'allowWatchBookmarks'),
          timeoutSeconds:
            Number.isFinite(timeout) && timeout > 0 ? timeout : DEFAULT_WATCH_TIMEOUT_S,
          asTable: wantsTable(req.headers.accept),
        },
        res,
      );
      this.#watches.add(watch);
      res.on('close', () => this.#watches.delete(watch));
      return;
    }
    if (method === 'GET') {
      const { items, resourceVersion } = api.list(type, ns, selectors);
      const presented = items.map((o) => api.present(type, o, route.version));
      if (wantsTable(req.headers.accept)) {
        send(res, 200, toTable(type, presented, { resourceVersion }));
        return;
      }
      send(res, 200, {
        kind: type.listKind,
        apiVersion: type.group === '' ? route.version : `${type.group}/${route.version}`,
        metadata: { resourceVersion },
        items: presented,
      });
      return;
    }
    if (method === 'POST') {
      const body = await readObject(req);
      const created = api.create(type, ns ?? 'default', body, {
        dryRun: query.getAll('dryRun').includes('All'),
        ...fieldValidation(query),
        ...fieldManager(query),
      });
      send(res, 201, api.present(type, created, route.version));
      return;
    }
    if (method === 'DELETE') {
      const body = await readObject(req);
      const opts = deleteOptions(body, query);
      for (const o of api.list(type, ns, selectors).items) {
        api.delete(type, o.metadata.namespace ?? '', o.metadata.name ?? '', opts);
      }
      send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' });
      return;
    }
    throw new ApiStatusError(
      405,
      StatusReasons.MethodNotAllowed,
      `method ${method} is not allowed`,
    );
  }
}
