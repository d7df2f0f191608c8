// SPDX-License-Identifier: Apache-2.0
/**
 * Failures of API calls, carried as CdiError (code CDI_KUBE_API) with the HTTP status and the
 * Kubernetes `Status` reason, and rendered as a `Status` object by the server.
 */
import { CdiError, ErrorCodes } from '../../common/errors.js';
import type { ResourceType } from './resources.js';

/** `Status.reason` values the sandbox answers with. */
export const StatusReasons = {
  NotFound: 'NotFound',
  AlreadyExists: 'AlreadyExists',
  Conflict: 'Conflict',
  Invalid: 'Invalid',
  BadRequest: 'BadRequest',
  MethodNotAllowed: 'MethodNotAllowed',
  Expired: 'Expired',
  UnsupportedMediaType: 'UnsupportedMediaType',
  Unauthorized: 'Unauthorized',
  Forbidden: 'Forbidden',
  ServiceUnavailable: 'ServiceUnavailable',
  InternalError: 'InternalError',
} as const;
/** One of {@link StatusReasons}. */
export type StatusReason = (typeof StatusReasons)[keyof typeof StatusReasons];

/** Fields of `Status.details`. */
export interface StatusDetails {
  readonly name?: string;
  readonly group?: string;
  readonly kind?: string;
  readonly causes?: readonly { reason: string; message: string; field: string }[];
}

/** An API failure with its HTTP status and reason. */
export class ApiStatusError extends CdiError {
  override readonly name = 'ApiStatusError';
  constructor(
    readonly statusCode: number,
    readonly reason: StatusReason,
    message: string,
    readonly statusDetails: StatusDetails = {},
  ) {
    super(ErrorCodes.KubeApi, message, { httpStatus: statusCode, details: { reason } });
  }

  /** The `Status` object a Kubernetes API server returns for this failure. */
  toStatus(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      details: this.statusDetails,
      code: this.statusCode,
    };
  }
}

/** `datavolumes.cdi.kubevirt.io` or `pods` (the qualified resource in messages). */
export function qualifiedResource(type: ResourceType): string {
  return type.group === '' ? type.plural : `${type.plural}.${type.group}`;
}

/** 404 for a named object. */
export function notFound(type: ResourceType, name: string): ApiStatusError {
  return new ApiStatusError(
    404,
    StatusReasons.NotFound,
    `${qualifiedResource(type)} "${name}" not found`,
    {
      name,
      group: type.group,
      kind: type.plural,
    },
  );
}

/** 409 AlreadyExists. */
export function alreadyExists(type: ResourceType, name: string): ApiStatusError {
  return new ApiStatusError(
    409,
    StatusReasons.AlreadyExists,
    `${qualifiedResource(type)} "${name}" already exists`,
    {
      name,
      group: type.group,
      kind: type.plural,
    },
  );
}

/** 409 Conflict on a stale resourceVersion or failed precondition. */
export function conflict(type: ResourceType, name: string, why: string): ApiStatusError {
  return new ApiStatusError(
    409,
    StatusReasons.Conflict,
    `Operation cannot be fulfilled on ${qualifiedResource(type)} "${name}": ${why}`,
    { name, group: type.group, kind: type.plural },
  );
}

/** 422 Invalid with one cause. */
export function invalid(
  type: ResourceType,
  name: string,
  field: string,
  message: string,
): ApiStatusError {
  return new ApiStatusError(
    422,
    StatusReasons.Invalid,
    `${type.kind}${type.group === '' ? '' : `.${type.group}`} "${name}" is invalid: ${field}: ${message}`,
    {
      name,
      group: type.group,
      kind: type.kind,
      causes: [{ reason: 'FieldValueInvalid', message, field }],
    },
  );
}

/** 400 BadRequest. */
export function badRequest(message: string): ApiStatusError {
  return new ApiStatusError(400, StatusReasons.BadRequest, message);
}
