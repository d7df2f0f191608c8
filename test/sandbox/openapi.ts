// SPDX-License-Identifier: Apache-2.0
/**
 * The OpenAPI v3 surface: `/openapi/v3` lists one document per group/version, and each document
 * declares, for every kind, a PATCH operation that accepts the `fieldValidation` query parameter
 * (what kubectl 1.27+ checks before trusting the server with validation: `--validate=strict`
 * then sends `fieldValidation=Strict` instead of validating client-side) and the kind's schema
 * in `components.schemas`, tagged with `x-kubernetes-group-version-kind`, which is how
 * `kubectl explain` finds it. Custom resources get their CRD's `openAPIV3Schema`; built-in kinds
 * the schemas of builtin-schemas.ts. Schema names follow kube-apiserver's: the group reversed,
 * then version and kind (`io.kubevirt.cdi.v1beta1.DataVolume`, `io.k8s.api.core.v1.Pod`).
 *
 * `/openapi/v2` is an empty document: kubectl falls back to it for a group/version that
 * `/openapi/v3` does not list (an aggregated API whose server publishes no OpenAPI, such as the
 * token API), and then finds no schema, so it skips client-side validation as it does on a real
 * cluster, where the v2 document exists but lacks that kind.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { builtinSchema } from './builtin-schemas.js';
import type { ResourceType, TypeRegistry } from './resources.js';

function gvPath(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

/**
 * The schema name of a kind, as kube-apiserver's (`io.k8s.api.<group's first label>.<version>.
 * <Kind>` for built-ins; a few built-in groups live elsewhere there, which no client relies on).
 */
function schemaName(type: ResourceType, version: string): string {
  if (type.custom) return [...type.group.split('.').reverse(), version, type.kind].join('.');
  return `io.k8s.api.${type.group === '' ? 'core' : (type.group.split('.')[0] ?? '')}.${version}.${type.kind}`;
}

function schemaOf(type: ResourceType, group: string, version: string): Record<string, unknown> {
  const base = type.custom && type.schema !== undefined ? type.schema : builtinSchema(type.kind);
  return {
    ...base,
    'x-kubernetes-group-version-kind': [{ group, kind: type.kind, version }],
  };
}

function documentFor(
  types: readonly ResourceType[],
  group: string,
  version: string,
): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const t of types) {
    const base = `/${gvPath(group, version)}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.plural}/{name}`;
    paths[base] = {
      patch: {
        operationId: `patch${t.kind}`,
        parameters: [
          { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
        ],
        responses: { '200': { description: 'OK' } },
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': { group, version, kind: t.kind },
      },
    };
  }
  const schemas: Record<string, unknown> = {};
  for (const t of types) schemas[schemaName(t, version)] = schemaOf(t, group, version);
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.32.0-sandbox' },
    paths,
    components: { schemas },
  };
}

function byGroupVersion(
  registry: TypeRegistry,
): Map<string, { group: string; version: string; types: ResourceType[] }> {
  const out = new Map<string, { group: string; version: string; types: ResourceType[] }>();
  for (const t of registry.all()) {
    for (const v of t.versions) {
      const key = gvPath(t.group, v);
      const entry = out.get(key) ?? { group: t.group, version: v, types: [] };
      entry.types.push(t);
      out.set(key, entry);
    }
  }
  return out;
}

/** The body for an `/openapi/v3...` path, or undefined when there is none. */
export function openApiV3(
  registry: TypeRegistry,
  pathname: string,
): Record<string, unknown> | undefined {
  const gvs = byGroupVersion(registry);
  if (pathname === '/openapi/v3' || pathname === '/openapi/v3/') {
    const paths: Record<string, unknown> = {};
    for (const [key, gv] of gvs) {
      const hash = createHash('sha256')
        .update(JSON.stringify(documentFor(gv.types, gv.group, gv.version)))
        .digest('hex')
        .slice(0, 32);
      paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${hash}` };
    }
    return { paths };
  }
  const key = pathname.replace(/^\/openapi\/v3\//, '');
  const gv = gvs.get(key);
  return gv === undefined ? undefined : documentFor(gv.types, gv.group, gv.version);
}

const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';
/** What kube-apiserver answers with: the same type, `@` (not a MIME token character) as `.`. */
const OPENAPI_V2_PROTOBUF_TYPE = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';

/** Answers `/openapi/v2` with an empty document: protobuf (zero bytes) when asked for, else JSON. */
export function serveOpenApiV2(req: IncomingMessage, res: ServerResponse): void {
  if ((req.headers.accept ?? '').includes(OPENAPI_V2_PROTOBUF)) {
    res.writeHead(200, { 'Content-Type': OPENAPI_V2_PROTOBUF_TYPE, 'Content-Length': 0 }).end();
    return;
  }
  const text = JSON.stringify({
    swagger: '2.0',
    info: { title: 'Kubernetes', version: 'v1.32.0-sandbox' },
    paths: {},
    definitions: {},
  });
  res
    .writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
    })
    .end(text);
}
