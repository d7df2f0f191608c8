// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { validateDataSourceReview } from './datasource-validate.js';

function review(source: unknown, operation = 'CREATE', resource = 'datasources'): unknown {
  return {
    request: {
      uid: 'u-3',
      operation,
      resource: { group: 'cdi.kubevirt.io', version: 'v1beta1', resource },
      namespace: 'golden',
      object: {
        metadata: { name: 'fedora', namespace: 'golden' },
        spec: { source },
      },
    },
  };
}

const allowedOf = (answer: unknown): boolean =>
  (answer as { response: { allowed: boolean } }).response.allowed;

describe('DataSource validating webhook', () => {
  it.each<{ what: string; source: unknown; operation?: string; allowed: boolean }>([
    {
      what: 'a claim source',
      source: { pvc: { namespace: 'golden', name: 'disk' } },
      allowed: true,
    },
    {
      what: 'a pointer to another DataSource',
      source: { dataSource: { namespace: 'golden', name: 'fedora-40' } },
      allowed: true,
    },
    {
      what: 'a pointer to the same name in another namespace',
      source: { dataSource: { namespace: 'other', name: 'fedora' } },
      allowed: true,
    },
    {
      what: 'a pointer to itself',
      source: { dataSource: { namespace: 'golden', name: 'fedora' } },
      allowed: false,
    },
    {
      what: 'a pointer to itself without a namespace',
      source: { dataSource: { name: 'fedora' } },
      allowed: false,
    },
    {
      what: 'the deletion of one pointing at itself',
      source: { dataSource: { name: 'fedora' } },
      operation: 'DELETE',
      allowed: true,
    },
  ])('$what: allowed=$allowed', ({ source, operation, allowed }) => {
    const answer = validateDataSourceReview(review(source, operation));
    expect(allowedOf(answer)).toBe(allowed);
    if (!allowed)
      expect(answer).toMatchObject({
        response: { status: { code: 422, message: 'DataSource cannot point to itself' } },
      });
  });

  it('refuses a review for another resource', () => {
    expect(validateDataSourceReview(review({}, 'CREATE', 'datavolumes'))).toMatchObject({
      response: {
        allowed: false,
        status: { code: 400, message: 'resource is datavolumes but request is: datasources' },
      },
    });
  });
});
