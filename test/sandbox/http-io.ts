// SPDX-License-Identifier: Apache-2.0
/** Request and response plumbing of the sandbox API server: bodies, routes, query options. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiStatusError, badRequest, StatusReasons } from './api-errors.js';
import type { DeleteOptions, PropagationPolicy } from './object-api.js';
import { load } from 'js-yaml';
import { isRecord } from './object.js';
import { decodeKubeProtobuf, PROTOBUF_CONTENT_TYPE } from './protobuf.js';
import type { FieldValidation } from './schema.js';

const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** A resource URL taken apart. */
export interface Route {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
}

/** Sends a JSON body. */
export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Reads a request body (at most 16 MiB). */
export async function readBody(req: IncomingMessage): Promise<string> {
  return (await readBytes(req)).toString('utf8');
}

/** Server-side apply's patch type (YAML, or JSON, which is YAML too). */
export const APPLY_PATCH_CONTENT_TYPE = 'application/apply-patch+yaml';

/** The media type of a request body, without parameters. */
export function contentTypeOf(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
}

/**
 * Reads a request body as an object: JSON, or client-go's protobuf for the built-in kinds
 * kubectl's generators send. Empty is undefined.
 */
export async function readObject(req: IncomingMessage): Promise<unknown> {
  const bytes = await readBytes(req);
  const type = contentTypeOf(req);
  if (type === PROTOBUF_CONTENT_TYPE)
    return bytes.length === 0 ? undefined : decodeKubeProtobuf(bytes);
  if (type === APPLY_PATCH_CONTENT_TYPE) {
    try {
      return load(bytes.toString('utf8'));
    } catch (err) {
      throw badRequest(`error decoding YAML: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return parseJson(bytes.toString('utf8'));
}

async function readBytes(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new ApiStatusError(413, StatusReasons.BadRequest, 'request entity too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Parses a JSON body; empty is undefined; malformed is 400. */
export function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(
      `the body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

/** Splits `/api/v1/...` and `/apis/<group>/<version>/...` into a {@link Route}. */
export function parseRoute(segments: readonly string[]): Route | undefined {
  let group: string;
  let version: string;
  let rest: readonly string[];
  if (segments[0] === 'api' && segments.length >= 3) {
    group = '';
    version = segments[1] ?? '';
    rest = segments.slice(2);
  } else if (segments[0] === 'apis' && segments.length >= 4) {
    group = segments[1] ?? '';
    version = segments[2] ?? '';
    rest = segments.slice(3);
  } else return undefined;
  if (
    rest[0] === 'namespaces' &&
    rest.length >= 3 &&
    rest[2] !== 'status' &&
    rest[2] !== 'finalize'
  ) {
    return {
      group,
      version,
      namespace: rest[1],
      plural: rest[2] ?? '',
      name: rest[3],
      subresource: rest[4],
    };
  }
  return {
    group,
    version,
    namespace: undefined,
    plural: rest[0] ?? '',
    name: rest[1],
    subresource: rest[2],
  };
}

/** A boolean query parameter as Go's strconv.ParseBool reads it (`true`, `True`, `1`, `t`, ...). */
export function queryFlag(query: URLSearchParams, name: string): boolean {
  return ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(query.get(name) ?? '');
}

/** DeleteOptions from the body or the query. */
export function deleteOptions(body: unknown, query: URLSearchParams): DeleteOptions {
  const b = isRecord(body) ? body : {};
  const policy = (b['propagationPolicy'] ?? query.get('propagationPolicy') ?? undefined) as
    PropagationPolicy | undefined;
  const graceRaw = b['gracePeriodSeconds'] ?? query.get('gracePeriodSeconds') ?? undefined;
  const pre = isRecord(b['preconditions']) ? b['preconditions'] : undefined;
  const preconditions = {
    ...(typeof pre?.['uid'] === 'string' ? { uid: pre['uid'] } : {}),
    ...(typeof pre?.['resourceVersion'] === 'string'
      ? { resourceVersion: pre['resourceVersion'] }
      : {}),
  };
  let orphan = b['orphanDependents'] ?? query.get('orphanDependents') ?? undefined;
  if (orphan === 'true') orphan = true;
  return {
    ...(policy === undefined
      ? orphan === true
        ? { propagationPolicy: 'Orphan' as const }
        : {}
      : { propagationPolicy: policy }),
    ...(graceRaw === undefined || graceRaw === null
      ? {}
      : { gracePeriodSeconds: Number(graceRaw) }),
    ...(Object.keys(preconditions).length > 0 ? { preconditions } : {}),
  };
}

/** The `fieldManager` query parameter, when given. */
export function fieldManager(query: URLSearchParams): { fieldManager?: string } {
  const v = query.get('fieldManager');
  return v === null || v === '' ? {} : { fieldManager: v };
}

/** The `fieldValidation` query parameter, when valid. */
export function fieldValidation(query: URLSearchParams): { fieldValidation?: FieldValidation } {
  const v = query.get('fieldValidation');
  return v === 'Strict' || v === 'Warn' || v === 'Ignore' ? { fieldValidation: v } : {};
}
