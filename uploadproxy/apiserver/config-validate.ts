// SPDX-License-Identifier: Apache-2.0
/**
 * Validating webhooks for CDI's configuration objects: the CDIConfig (`/cdiconfig-validate`),
 * StorageProfiles (`/storageprofile-validate`) and the CDI resource (`/cdi-validate`, CDI's
 * path), refusing what CDI's schemas refuse (common/config-validate.ts) with one cause per
 * problem. An update that leaves the spec as it was is admitted even when the spec is invalid, so
 * an object that predates the webhook can still get its finalizers and annotations changed. Pure:
 * review in, review out.
 */
import {
  cdiConfigSpecProblems,
  cdiSpecProblems,
  storageProfileSpecProblems,
  type FieldProblem,
} from '../../common/config-validate.js';
import {
  admissionRequestOf,
  allowed,
  rec,
  rejected,
  wrongResource,
  type Json,
} from './admission-review.js';

/** Paths the webhooks are registered under. */
export const CDICONFIG_VALIDATE_PATH = '/cdiconfig-validate';
export const STORAGEPROFILE_VALIDATE_PATH = '/storageprofile-validate';
export const CDI_VALIDATE_PATH = '/cdi-validate';

function validateSpec(
  review: unknown,
  resource: string,
  problemsOf: (spec: Json) => readonly FieldProblem[],
): Json {
  const req = admissionRequestOf(review);
  const wrong = wrongResource(req, 'cdi.kubevirt.io', resource);
  if (wrong !== undefined) return wrong;
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return allowed(req.uid);
  const spec = rec(req.object['spec']);
  if (
    req.operation === 'UPDATE' &&
    JSON.stringify(spec) === JSON.stringify(rec(req.oldObject['spec']))
  )
    return allowed(req.uid);
  const problems = problemsOf(spec);
  if (problems.length === 0) return allowed(req.uid);
  return rejected(
    req.uid,
    problems.map((p) => ({ message: p.message, field: p.field, type: 'FieldValueInvalid' })),
  );
}

/** Answers an AdmissionReview of the CDIConfig. */
export function validateCdiConfigReview(review: unknown): Json {
  return validateSpec(review, 'cdiconfigs', (spec) => cdiConfigSpecProblems(spec));
}

/** Answers an AdmissionReview of a StorageProfile. */
export function validateStorageProfileReview(review: unknown): Json {
  return validateSpec(review, 'storageprofiles', (spec) => storageProfileSpecProblems(spec));
}

/** Answers an AdmissionReview of the CDI resource. */
export function validateCdiReview(review: unknown): Json {
  return validateSpec(review, 'cdis', (spec) => cdiSpecProblems(spec));
}
