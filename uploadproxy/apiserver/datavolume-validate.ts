// SPDX-License-Identifier: Apache-2.0
/**
 * CDI's DataVolume validating webhook (`/datavolume-validate`, AdmissionReview v1): a DataVolume
 * whose spec breaks CDI's rules is refused at create time with CDI's messages (the rules are the
 * controller's, in common/datavolume/validate.ts), and an update that changes the spec is refused
 * with "Cannot update DataVolume Spec" (except a multi-stage import's checkpoints). A clone whose
 * source claim does not exist yet is allowed: the DataVolume waits for it. Pure: review in, review
 * out.
 */
import type { DataVolume } from '../../common/api/datavolume.js';
import { specUpdateProblem, validateDataVolume } from '../../common/datavolume/validate.js';
import {
  admissionRequestOf,
  allowed,
  rejected,
  rec,
  wrongResource,
  type Json,
} from './admission-review.js';

/** The path CDI registers the webhook under. */
export const DATAVOLUME_VALIDATE_PATH = '/datavolume-validate';

function asDataVolume(object: Json): DataVolume {
  // The API server has checked the CRD's schema; the rules below read every field defensively.
  return { ...object, metadata: rec(object['metadata']) };
}

/** Answers one AdmissionReview (v1) body with the review to send back. */
export function validateDataVolumeReview(review: unknown): Json {
  const req = admissionRequestOf(review);
  const wrong = wrongResource(req, 'cdi.kubevirt.io', 'datavolumes');
  if (wrong !== undefined) return wrong;
  const dv = asDataVolume(req.object);
  if (req.operation === 'UPDATE') {
    const problem = specUpdateProblem(asDataVolume(req.oldObject), dv);
    if (problem !== undefined)
      return rejected(req.uid, [
        { message: problem, field: 'DataVolume.Spec', type: 'FieldValueDuplicate' },
      ]);
    // An unchanged spec was judged when it was created (perhaps by older rules): let it be.
    return allowed(req.uid);
  }
  if (req.operation !== 'CREATE') return allowed(req.uid);
  const problems = validateDataVolume(dv);
  if (problems.length === 0) return allowed(req.uid);
  return rejected(
    req.uid,
    problems.map((message) => ({ message, field: 'spec' })),
  );
}
