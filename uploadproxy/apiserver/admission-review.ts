// SPDX-License-Identifier: Apache-2.0
/**
 * The AdmissionReview v1 wire shapes the validating and PVC webhooks share: reading the request
 * out of an untrusted review, and CDI's answers (`toRejectedAdmissionResponse`: 422 `Invalid`
 * with one cause per problem; `toAdmissionResponseError`: 400 with the error's text).
 */

/** A decoded JSON object. */
export type Json = Record<string, unknown>;

/** `v` when it is a JSON object, else an empty one (reviews are untrusted input). */
export function rec(v: unknown): Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
}

/** `v` when it is a string, else ''. */
export function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** What a webhook reads from a review. */
export interface AdmissionRequest {
  readonly uid: string;
  readonly operation: string;
  readonly group: string;
  readonly resource: string;
  readonly namespace: string;
  readonly object: Json;
  readonly oldObject: Json;
}

/** The request of an AdmissionReview body. */
export function admissionRequestOf(review: unknown): AdmissionRequest {
  const request = rec(rec(review)['request']);
  const resource = rec(request['resource']);
  return {
    uid: str(request['uid']),
    operation: str(request['operation']),
    group: str(resource['group']),
    resource: str(resource['resource']),
    namespace: str(request['namespace']),
    object: rec(request['object']),
    oldObject: rec(request['oldObject']),
  };
}

/** One reason a request is refused, and the field it concerns. */
export interface Cause {
  readonly message: string;
  readonly field: string;
  readonly type?: string;
}

/** The review answering `uid` with `response`. */
export function reviewAnswer(uid: string, response: Json): Json {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid, ...response },
  };
}

/** Allowed, optionally with a JSON patch (RFC 6902 operations). */
export function allowed(uid: string, patch?: readonly unknown[]): Json {
  if (patch === undefined || patch.length === 0) return reviewAnswer(uid, { allowed: true });
  return reviewAnswer(uid, {
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
  });
}

/** Refused as invalid (422), the message being the causes' messages (CDI's rejection). */
export function rejected(uid: string, causes: readonly Cause[]): Json {
  return reviewAnswer(uid, {
    allowed: false,
    status: {
      code: 422,
      reason: 'Invalid',
      message: causes.map((c) => c.message).join(', '),
      details: {
        causes: causes.map((c) => ({
          type: c.type ?? 'FieldValueInvalid',
          message: c.message,
          field: c.field,
        })),
      },
    },
  });
}

/** Refused because the request could not be judged (400). */
export function failed(uid: string, message: string): Json {
  return reviewAnswer(uid, { allowed: false, status: { code: 400, message } });
}

/** Refuses a review sent for another resource than the webhook's (a misregistered webhook). */
export function wrongResource(
  req: AdmissionRequest,
  group: string,
  resource: string,
): Json | undefined {
  if (req.group === group && req.resource === resource) return undefined;
  return failed(req.uid, `resource is ${req.resource} but request is: ${resource}`);
}
