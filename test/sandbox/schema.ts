// SPDX-License-Identifier: Apache-2.0
/**
 * Structural-schema handling of custom resources, as the apiextensions server does it: fields
 * not declared in the CRD's openAPIV3Schema are pruned (or, with `fieldValidation=Strict`,
 * refused), and declared ones are checked for type, enum, pattern and required properties.
 * `x-kubernetes-preserve-unknown-fields` and `x-kubernetes-int-or-string` are honoured.
 */
import { ApiStatusError, badRequest, invalid, StatusReasons } from './api-errors.js';
import { isRecord, str, type KObject } from './object.js';
import type { ResourceType } from './resources.js';

/** The `fieldValidation` query parameter. */
export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

/** What validation found. */
export interface SchemaFindings {
  /** Paths of undeclared fields (pruned). */
  readonly unknown: string[];
  /** Schema violations, field path and message. */
  readonly errors: { field: string; message: string }[];
}

type Schema = Record<string, unknown>;

function typeOk(type: unknown, value: unknown): boolean {
  switch (type) {
    case 'object':
      return isRecord(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    default:
      return true;
  }
}

function walk(schema: Schema, value: unknown, path: string, found: SchemaFindings): unknown {
  if (value === null) {
    if (schema['nullable'] !== true)
      found.errors.push({ field: path, message: 'Invalid value: "null": field may not be null' });
    return value;
  }
  if (schema['x-kubernetes-int-or-string'] === true) {
    if (!(typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value)))) {
      found.errors.push({
        field: path,
        message: `Invalid value: ${JSON.stringify(value)}: must be an integer or a string`,
      });
    }
    return value;
  }
  if (schema['type'] !== undefined && !typeOk(schema['type'], value)) {
    found.errors.push({
      field: path,
      message: `Invalid value: ${JSON.stringify(value)}: must be of type ${str(schema['type'])}`,
    });
    return value;
  }
  if (
    Array.isArray(schema['enum']) &&
    !schema['enum'].some((e) => JSON.stringify(e) === JSON.stringify(value))
  ) {
    const allowed = schema['enum'].map((e) => JSON.stringify(e)).join(', ');
    found.errors.push({
      field: path,
      message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed}`,
    });
  }
  if (
    typeof value === 'string' &&
    typeof schema['pattern'] === 'string' &&
    !new RegExp(schema['pattern']).test(value)
  ) {
    found.errors.push({
      field: path,
      message: `Invalid value: ${JSON.stringify(value)}: should match '${schema['pattern']}'`,
    });
  }
  if (Array.isArray(value)) {
    const items = schema['items'];
    return isRecord(items) ? value.map((v, i) => walk(items, v, `${path}[${i}]`, found)) : value;
  }
  if (!isRecord(value)) return value;
  const props = isRecord(schema['properties']) ? schema['properties'] : undefined;
  const additional = schema['additionalProperties'];
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  if (Array.isArray(schema['required'])) {
    for (const r of schema['required']) {
      if (typeof r === 'string' && value[r] === undefined)
        found.errors.push({ field: `${path}.${r}`, message: 'Required value' });
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const child = `${path}.${k}`;
    const sub = props?.[k];
    if (isRecord(sub)) out[k] = walk(sub, v, child, found);
    else if (isRecord(additional)) out[k] = walk(additional, v, child, found);
    else if (
      preserve ||
      additional === true ||
      (props === undefined && additional === undefined && schema['type'] !== 'object')
    )
      out[k] = v;
    else if (props === undefined && additional === undefined) {
      // `type: object` with neither properties nor additionalProperties: an empty struct.
      found.unknown.push(child);
    } else found.unknown.push(child);
  }
  return out;
}

/**
 * Validates a custom resource against its version's schema and prunes undeclared fields.
 * apiVersion, kind and metadata are the server's business and pass untouched.
 */
export function validateCustomResource(
  schema: Schema,
  obj: Record<string, unknown>,
): { pruned: Record<string, unknown>; found: SchemaFindings } {
  const found: SchemaFindings = { unknown: [], errors: [] };
  const { apiVersion, kind, metadata, ...rest } = obj;
  const props = isRecord(schema['properties']) ? schema['properties'] : {};
  const body = walk(
    { ...schema, properties: { ...props, apiVersion: {}, kind: {}, metadata: {} } },
    rest,
    '',
    found,
  ) as Record<string, unknown>;
  const fix = (p: string): string => p.replace(/^\./, '');
  return {
    pruned: { ...body, apiVersion, kind, metadata },
    found: {
      unknown: found.unknown.map(fix),
      errors: found.errors.map((e) => ({ ...e, field: fix(e.field) })),
    },
  };
}

/**
 * Prunes and validates a custom resource against its type's schema: 400 for undeclared fields
 * under `Strict`, 422 for schema violations; built-in kinds pass untouched.
 */
export function checkSchema(
  type: ResourceType,
  obj: KObject,
  mode: FieldValidation | undefined,
): KObject {
  if (!type.custom || type.schema === undefined) return obj;
  const { pruned, found } = validateCustomResource(type.schema, obj);
  const name = obj.metadata.name ?? '';
  if (mode === 'Strict' && found.unknown.length > 0) {
    const fields = found.unknown.map((f) => `unknown field "${f}"`).join(', ');
    throw badRequest(
      `${type.kind} in version "${type.versions[0] ?? ''}" cannot be handled as a ${type.kind}: strict decoding error: ${fields}`,
    );
  }
  const first = found.errors[0];
  if (first !== undefined) {
    const err = invalid(type, name, first.field, first.message);
    throw new ApiStatusError(
      422,
      StatusReasons.Invalid,
      `${type.kind}.${type.group} "${name}" is invalid: ${found.errors.map((e) => `${e.field}: ${e.message}`).join(', ')}`,
      {
        ...err.statusDetails,
        causes: found.errors.map((e) => ({
          reason: 'FieldValueInvalid',
          message: e.message,
          field: e.field,
        })),
      },
    );
  }
  return pruned as KObject;
}
