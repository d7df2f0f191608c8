// SPDX-License-Identifier: Apache-2.0
/**
 * CDI's DataSource validating webhook (`/datasource-validate`, CDI `datasource-validate.go`): a
 * DataSource whose `spec.source.dataSource` points at itself is refused ("DataSource cannot point
 * to itself"), since resolving it would never end. A pointer without a namespace means the
 * DataSource's own namespace, as the controller resolves it. Pure: review in, review out.
 */
import {
  admissionRequestOf,
  allowed,
  rec,
  rejected,
  str,
  wrongResource,
  type Json,
} from './admission-review.js';

/** The path CDI registers the webhook under. */
export const DATASOURCE_VALIDATE_PATH = '/datasource-validate';

/** Answers one AdmissionReview (v1) body with the review to send back. */
export function validateDataSourceReview(review: unknown): Json {
  const req = admissionRequestOf(review);
  const wrong = wrongResource(req, 'cdi.kubevirt.io', 'datasources');
  if (wrong !== undefined) return wrong;
  if (req.operation === 'DELETE') return allowed(req.uid);
  const meta = rec(req.object['metadata']);
  const pointer = rec(rec(rec(req.object['spec'])['source'])['dataSource']);
  if (Object.keys(pointer).length === 0) return allowed(req.uid);
  const namespace = str(meta['namespace']) || req.namespace;
  const pointsAtItself =
    str(pointer['name']) === str(meta['name']) &&
    (str(pointer['namespace']) || namespace) === namespace;
  if (!pointsAtItself) return allowed(req.uid);
  return rejected(req.uid, [
    {
      message: 'DataSource cannot point to itself',
      field: 'DataSource.Spec.Source.DataSource',
      type: 'FieldValueNotSupported',
    },
  ]);
}
