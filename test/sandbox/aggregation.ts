// SPDX-License-Identifier: Apache-2.0
/**
 * API aggregation: an APIService (apiregistration.k8s.io/v1) whose `spec.service` names a
 * Service takes over its group/version, and requests for it are proxied over HTTPS to that
 * Service: its clusterIP, or its `externalName` for a process that runs outside the sandbox
 * (`externalName: 127.0.0.1` with the port in the APIService). As the real aggregator does: the
 * upstream certificate is checked against `caBundle` (unless `insecureSkipTLSVerify`) for the
 * name `<service>.<namespace>.svc`, not for the address dialled; the sandbox presents its
 * front-proxy client certificate (CN `front-proxy-client`, CA published in
 * `kube-system/extension-apiserver-authentication`); the client's token is not passed on and the
 * caller's identity goes in `X-Remote-User`/`X-Remote-Group` (any such header the client sent is
 * dropped first).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { ApiStatusError, StatusReasons } from './api-errors.js';
import type { ObjectApi } from './object-api.js';
import { getPath, isRecord, str, type KObject } from './object.js';

/** Where an aggregated group/version is served. */
export interface AggregationTarget {
  readonly host: string;
  readonly port: number;
  /** `<service>.<namespace>.svc`: the name the serving certificate must carry. */
  readonly servername: string;
  readonly ca?: string;
  readonly insecure: boolean;
}

function apiServices(api: ObjectApi): KObject[] {
  const t = api.types.lookup('apiregistration.k8s.io', 'v1', 'apiservices');
  return t === undefined ? [] : api.list(t, undefined).items;
}

/** Groups and versions served through APIServices (for `/apis`). */
export function aggregatedGroups(api: ObjectApi): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const svc of apiServices(api)) {
    const group = getPath(svc, ['spec', 'group']);
    const version = getPath(svc, ['spec', 'version']);
    if (
      typeof group === 'string' &&
      typeof version === 'string' &&
      isRecord(getPath(svc, ['spec', 'service']))
    ) {
      out.set(group, [...(out.get(group) ?? []), version]);
    }
  }
  return out;
}

/** The upstream of an aggregated group/version, or undefined when it is served locally. */
export function aggregationTarget(
  api: ObjectApi,
  group: string,
  version: string,
): AggregationTarget | undefined {
  const svc = apiServices(api).find(
    (s) => getPath(s, ['spec', 'group']) === group && getPath(s, ['spec', 'version']) === version,
  );
  const ref = getPath(svc, ['spec', 'service']);
  if (svc === undefined || !isRecord(ref)) return undefined;
  const serviceType = api.types.lookup('', 'v1', 'services');
  const ns = str(ref['namespace']);
  const name = str(ref['name']);
  const service = serviceType === undefined ? undefined : api.find(serviceType, ns, name);
  if (service === undefined) {
    throw new ApiStatusError(
      503,
      StatusReasons.ServiceUnavailable,
      `service ${ns}/${name} of APIService ${version}.${group} not found`,
    );
  }
  const external = getPath(service, ['spec', 'externalName']);
  const caBundle = getPath(svc, ['spec', 'caBundle']);
  return {
    host: typeof external === 'string' ? external : str(getPath(service, ['spec', 'clusterIP'])),
    port: typeof ref['port'] === 'number' ? ref['port'] : 443,
    servername: `${name}.${ns}.svc`,
    ...(typeof caBundle === 'string'
      ? { ca: Buffer.from(caBundle, 'base64').toString('utf8') }
      : {}),
    insecure: getPath(svc, ['spec', 'insecureSkipTLSVerify']) === true,
  };
}

/** Who the aggregator says is calling, and the client certificate it says it with. */
export interface ProxyIdentity {
  readonly user: string;
  readonly groups: readonly string[];
  /** The front-proxy client certificate and key (PEM). */
  readonly clientCert: { readonly cert: string; readonly key: string };
}

/** Proxies one request; `fail` answers with a Status when the upstream cannot be reached. */
export function proxyRequest(
  req: IncomingMessage,
  res: ServerResponse,
  { target, identity }: { readonly target: AggregationTarget; readonly identity: ProxyIdentity },
  fail: (err: ApiStatusError) => void,
): void {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headersDistinct)) {
    if (v === undefined || k === 'authorization' || k === 'host' || k.startsWith('x-remote-'))
      continue;
    headers[k] = v.length === 1 ? (v[0] ?? '') : v;
  }
  const upstream = httpsRequest(
    {
      host: target.host,
      port: target.port,
      servername: target.servername,
      method: req.method,
      path: req.url,
      headers: {
        ...headers,
        'x-remote-user': identity.user,
        'x-remote-group': [...identity.groups],
      },
      cert: identity.clientCert.cert,
      key: identity.clientCert.key,
      ...(target.ca === undefined ? {} : { ca: target.ca }),
      rejectUnauthorized: !target.insecure,
    },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      pipeline(up, res).catch(() => res.destroy());
    },
  );
  upstream.on('error', (err) => {
    fail(
      new ApiStatusError(
        503,
        StatusReasons.ServiceUnavailable,
        `error trying to reach service: ${err.message}`,
      ),
    );
  });
  pipeline(req, upstream).catch(() => upstream.destroy());
}
