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
import type { TLSSocket } from 'node:tls';
import { timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../common/logger.js';
import { ApiStatusError, badRequest, StatusReasons } from './api-errors.js';
import { aggregatedGroups, aggregationTarget, proxyRequest } from './aggregation.js';
import { answerReview, reviewOf, SANDBOX_USER } from './reviews.js';
import { Authorizer, forbidden, MASTERS, verbOf, type RequestAttributes } from './rbac.js';
import { AdmissionWebhooks, type AdmissionAttributes } from './webhooks.js';
import { coreVersions, groupDoc, groupList, resourceList, versionInfo } from './discovery.js';
import type { ObjectApi } from './object-api.js';
import type { KObject } from './object.js';
import { openApiV3, serveOpenApiV2 } from './openapi.js';
import { PatchError } from './patch.js';
import { hasScale, patchedScale, scaleOf, writeScale } from './scale.js';
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
  /** Serving key and certificate, and the CA whose client certificates authenticate users. */
  readonly tls: { readonly key: string; readonly cert: string; readonly clientCa: string };
  /** Client certificate presented to aggregated API servers (CN `front-proxy-client`). */
  readonly frontProxy: { readonly key: string; readonly cert: string };
  readonly log: Logger;
  /** Host file of a pod container's log, for `pods/<name>/log`. */
  readonly podLogPath: (
    namespace: string,
    name: string,
    container: string | undefined,
  ) => string | undefined;
  /** Told of every authenticated request once it is answered, as kube-apiserver's audit log. */
  readonly audit?: (event: AuditEvent) => void;
}

/** One answered request: who, what (RBAC's attributes) and the status code. */
export type AuditEvent = RequestAttributes & { readonly user: string; readonly code: number };

const DEFAULT_WATCH_TIMEOUT_S = 1800;

/** The server. */
export class ApiServer {
  readonly #opts: ApiServerOptions;
  readonly #server: Server;
  readonly #watches = new Set<{ stop: () => void }>();
  readonly #authorizer: Authorizer;
  readonly #webhooks: AdmissionWebhooks;

  constructor(opts: ApiServerOptions) {
    this.#opts = opts;
    this.#authorizer = new Authorizer(opts.api);
    this.#webhooks = new AdmissionWebhooks(opts.api);
    this.#server = createServer(
      {
        key: opts.tls.key,
        cert: opts.tls.cert,
        // Client certificates are asked for, not required: bearer tokens work without one.
        ca: opts.tls.clientCa,
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => {
        this.#handle(req, res).catch((err: unknown) => this.#fail(res, err));
      },
    );
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

  /**
   * Who the request is: its bearer token's user (the admin, a service account), else the
   * subject of a client certificate the sandbox CA signed (CN the user, O its groups), as
   * kube-apiserver's x509 authenticator reads it; else nobody.
   */
  #authenticate(req: IncomingMessage): UserInfo | undefined {
    const header = req.headers.authorization ?? '';
    if (header.startsWith('Bearer '))
      return this.#userOfToken(header.slice('Bearer '.length).trim());
    const socket = req.socket as TLSSocket;
    if (!socket.authorized) return undefined;
    const subject = socket.getPeerCertificate().subject as
      Record<string, string | string[] | undefined> | undefined;
    const cn = subject?.['CN'];
    if (typeof cn !== 'string' || cn === '') return undefined;
    const o = subject?.['O'];
    const orgs = o === undefined ? [] : Array.isArray(o) ? o : [o];
    return { username: cn, groups: [...orgs, 'system:authenticated'] };
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
    this.#opts.log.debug('api', { method, url: req.url, user: user.username });
    const attrs = requestAttributes(segments, url, method);
    const audit = this.#opts.audit;
    if (audit !== undefined)
      res.once('finish', () => audit({ ...attrs, user: user.username, code: res.statusCode }));
    if (!this.#authorizer.allows(user, attrs)) throw forbidden(user, attrs);
    if (segments[0] === 'apis' && segments.length >= 3) {
      const target = aggregationTarget(this.#opts.api, segments[1] ?? '', segments[2] ?? '');
      if (target !== undefined) {
        const identity = {
          user: user.username,
          groups: user.groups,
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
    if (
      url.pathname === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews' &&
      method === 'POST'
    ) {
      // `kubectl auth can-i`: whether the requester may do what the spec names.
      const body = await readObject(req);
      const spec = getPath(body, ['spec']);
      const asked = answerReview(
        'subjectaccessreviews',
        'POST',
        {
          spec: { ...(isRecord(spec) ? spec : {}), user: user.username, groups: [...user.groups] },
        },
        {
          authenticate: () => undefined,
          authorize: (u, a) => this.#authorizer.allows(u, a),
        },
      );
      send(res, 201, {
        kind: 'SelfSubjectAccessReview',
        apiVersion: 'authorization.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: isRecord(spec) ? spec : {},
        status: asked['status'],
      });
      return;
    }
    const review = reviewOf(segments);
    if (review !== undefined) {
      const body = await readObject(req);
      send(
        res,
        201,
        answerReview(review, method, body, {
          authenticate: (t) => this.#userOfToken(t),
          authorize: (u, a) => this.#authorizer.allows(u, a),
        }),
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
    await this.#resource({ req, res, user }, route, url.searchParams);
  }

  /**
   * Setting `blockOwnerDeletion` on an owner reference needs `update` on the owner's
   * `finalizers` subresource (kube-apiserver's OwnerReferencesPermissionEnforcement).
   */
  #checkOwnerReferences(user: UserInfo, body: unknown, namespace: string, old?: KObject): void {
    if (user.groups.includes(MASTERS)) return;
    const refs = getPath(body, ['metadata', 'ownerReferences']);
    const before = getPath(old, ['metadata', 'ownerReferences']);
    for (const ref of Array.isArray(refs) ? refs.filter(isRecord) : []) {
      if (ref['blockOwnerDeletion'] !== true) continue;
      const had = Array.isArray(before)
        ? before.some(
            (b) => isRecord(b) && b['uid'] === ref['uid'] && b['blockOwnerDeletion'] === true,
          )
        : false;
      if (had) continue;
      const ownerType = this.#opts.api.typeOf(String(ref['apiVersion']), String(ref['kind']));
      if (ownerType === undefined) continue;
      const attrs: RequestAttributes = {
        verb: 'update',
        apiGroup: ownerType.group,
        resource: ownerType.plural,
        subresource: 'finalizers',
        name: String(ref['name']),
        namespace: ownerType.namespaced ? namespace : '',
      };
      if (!this.#authorizer.allows(user, attrs)) {
        const why = forbidden(user, attrs);
        throw new ApiStatusError(
          403,
          StatusReasons.Forbidden,
          `cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: ${why.message.replace(/^.* is forbidden: /, '')}`,
        );
      }
    }
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
    call: { req: IncomingMessage; res: ServerResponse; user: UserInfo },
    route: Route,
    query: URLSearchParams,
  ): Promise<void> {
    const { req, res, user } = call;
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
      await this.#collection({ req, res, user, type, route, query, ns });
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
    if (sub === 'scale' && hasScale(type)) {
      const namespace = ns ?? '';
      const current = scaleOf(api.get(type, namespace, route.name));
      if (method === 'GET') return send(res, 200, current);
      if (method !== 'PUT' && method !== 'PATCH')
        throw new ApiStatusError(
          405,
          StatusReasons.MethodNotAllowed,
          `method ${method} is not allowed`,
        );
      const body = await readObject(req);
      const next = method === 'PUT' ? body : patchedScale(current, contentTypeOf(req), body);
      return send(res, 200, writeScale(api, type, namespace, route.name, next));
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
    const admission = (operation: 'CREATE' | 'UPDATE'): AdmissionRequestInfo => ({
      operation,
      type,
      version: route.version,
      ...(sub === undefined ? {} : { subresource: sub }),
      namespace,
      name,
      user,
      dryRun: query.getAll('dryRun').includes('All'),
    });
    switch (method) {
      case 'GET':
        out(200, api.get(type, namespace, name));
        return;
      case 'PUT': {
        const body = await readObject(req);
        this.#checkOwnerReferences(user, body, namespace, api.find(type, namespace, name));
        const opts = {
          ...(sub === 'status' ? { subresource: 'status' as const } : {}),
          ...fieldValidation(query),
          ...fieldManager(query),
        };
        out(
          200,
          await this.#admitted(admission('UPDATE'), {
            run: () => api.update(type, namespace, name, body, opts),
            preview: () => api.update(type, namespace, name, body, { ...opts, dryRun: true }),
            write: (obj, dryRun) => api.update(type, namespace, name, obj, { ...opts, dryRun }),
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
          const target = {
            namespace,
            name,
            ...(sub === 'status' ? { subresource: 'status' as const } : {}),
            ...fieldValidation(query),
            fieldManager: manager,
            force: queryFlag(query, 'force'),
          };
          const write = (obj: KObject, dryRun: boolean): KObject =>
            existed
              ? api.update(type, namespace, name, obj, {
                  ...(sub === 'status' ? { subresource: 'status' as const } : {}),
                  ...fieldValidation(query),
                  managedFieldsSet: true,
                  dryRun,
                })
              : api.create(type, namespace, obj, {
                  ...fieldValidation(query),
                  managedFieldsSet: true,
                  dryRun,
                });
          const applied = await this.#admitted(admission(existed ? 'UPDATE' : 'CREATE'), {
            run: () => api.apply(type, target, body),
            preview: () => api.apply(type, { ...target, dryRun: true }, body),
            write,
          });
          out(existed ? 200 : 201, applied);
          return;
        }
        const target = {
          namespace,
          name,
          ...(sub === 'status' ? { subresource: 'status' as const } : {}),
          ...fieldValidation(query),
          ...fieldManager(query),
        };
        out(
          200,
          await this.#admitted(admission('UPDATE'), {
            run: () => api.patch(type, target, contentType, body),
            preview: () => api.patch(type, { ...target, dryRun: true }, contentType, body),
            write: (obj, dryRun) =>
              api.update(type, namespace, name, obj, {
                ...(sub === 'status' ? { subresource: 'status' as const } : {}),
                ...fieldValidation(query),
                ...fieldManager(query),
                dryRun,
              }),
          }),
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

  /**
   * A write through the admission webhooks: the request's own write when none is configured;
   * else its dry run goes to the mutating webhooks, their result is checked (dry run) and shown
   * to the validating webhooks, and then written.
   */
  async #admitted(
    info: AdmissionRequestInfo,
    ops: {
      readonly run: () => KObject;
      readonly preview: () => KObject;
      readonly write: (obj: KObject, dryRun: boolean) => KObject;
    },
  ): Promise<KObject> {
    if (!this.#webhooks.configured()) return ops.run();
    const old =
      info.operation === 'UPDATE'
        ? this.#opts.api.find(info.type, info.namespace, info.name)
        : undefined;
    const candidate = ops.preview();
    const attrs: AdmissionAttributes = {
      ...info,
      name: candidate.metadata.name ?? info.name,
      object: candidate,
      oldObject: old,
    };
    const mutated = (await this.#webhooks.mutate(attrs)) ?? candidate;
    const checked = ops.write(mutated, true);
    await this.#webhooks.validate({ ...attrs, object: checked });
    return info.dryRun ? checked : ops.write(mutated, false);
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
    user: UserInfo;
    type: ResourceType;
    route: Route;
    query: URLSearchParams;
    ns: string | undefined;
  }): Promise<void> {
    const { req, res, user, type, route, query, ns } = ctx;
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
      this.#checkOwnerReferences(user, body, ns ?? 'default');
      const dryRun = query.getAll('dryRun').includes('All');
      const opts = { ...fieldValidation(query), ...fieldManager(query) };
      const name = getPath(body, ['metadata', 'name']);
      const created = await this.#admitted(
        {
          operation: 'CREATE',
          type,
          version: route.version,
          namespace: ns ?? 'default',
          name: typeof name === 'string' ? name : '',
          user,
          dryRun,
        },
        {
          run: () => api.create(type, ns ?? 'default', body, { ...opts, dryRun }),
          preview: () => api.create(type, ns ?? 'default', body, { ...opts, dryRun: true }),
          write: (obj, dry) => api.create(type, ns ?? 'default', obj, { ...opts, dryRun: dry }),
        },
      );
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

/** What a request asks to do, for the authorizer. */
function requestAttributes(
  segments: readonly string[],
  url: URL,
  method: string,
): RequestAttributes {
  const route = segments[0] === 'api' || segments[0] === 'apis' ? parseRoute(segments) : undefined;
  if (route === undefined) return { verb: method.toLowerCase(), path: url.pathname };
  const namespaces = route.group === '' && route.plural === 'namespaces';
  return {
    verb: verbOf(method, route.name !== undefined, queryFlag(url.searchParams, 'watch')),
    apiGroup: route.group,
    resource: route.plural,
    ...(route.subresource === undefined ? {} : { subresource: route.subresource }),
    ...(route.name === undefined ? {} : { name: route.name }),
    // A namespace's own requests are in that namespace, as kube-apiserver's attributes say.
    namespace: namespaces ? (route.name ?? '') : (route.namespace ?? ''),
  };
}

/** What an admitted write is, before its objects are known. */
type AdmissionRequestInfo = Omit<AdmissionAttributes, 'object' | 'oldObject'>;
