// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';

import {
  validateCdiConfigReview,
  validateCdiReview,
  validateStorageProfileReview,
} from './config-validate.js';

function review(
  resource: string,
  operation: string,
  spec: unknown,
  oldSpec?: unknown,
): Record<string, unknown> {
  return {
    request: {
      uid: 'u-9',
      operation,
      resource: { group: 'cdi.kubevirt.io', version: 'v1beta1', resource },
      object: { metadata: { name: 'x' }, spec },
      ...(oldSpec === undefined ? {} : { oldObject: { metadata: { name: 'x' }, spec: oldSpec } }),
    },
  };
}

interface Answer {
  response: { uid: string; allowed: boolean; status?: { code: number; message: string } };
}

const BAD_PROFILE = { cloneStrategy: 'teleport' };

describe('configuration validating webhooks', () => {
  it.each([
    {
      what: 'a valid CDIConfig',
      answer: () =>
        validateCdiConfigReview(review('cdiconfigs', 'CREATE', { preallocation: true })),
      allowed: true,
    },
    {
      what: 'a CDIConfig update to a bad overhead',
      answer: () =>
        validateCdiConfigReview(
          review('cdiconfigs', 'UPDATE', { filesystemOverhead: { global: '2' } }, {}),
        ),
      allowed: false,
    },
    {
      what: 'a StorageProfile with a bad strategy',
      answer: () => validateStorageProfileReview(review('storageprofiles', 'CREATE', BAD_PROFILE)),
      allowed: false,
    },
    {
      what: 'an update leaving a bad spec as it was (a finalizer added)',
      answer: () =>
        validateStorageProfileReview(review('storageprofiles', 'UPDATE', BAD_PROFILE, BAD_PROFILE)),
      allowed: true,
    },
    {
      what: 'a deletion',
      answer: () => validateCdiReview(review('cdis', 'DELETE', {})),
      allowed: true,
    },
    {
      what: 'a CDI resource with a bad certConfig',
      answer: () =>
        validateCdiReview(
          review('cdis', 'CREATE', { certConfig: { server: { duration: 'forever' } } }),
        ),
      allowed: false,
    },
  ])('$what: allowed=$allowed', ({ answer, allowed }) => {
    const a = answer() as unknown as Answer;
    expect(a.response.uid).toBe('u-9');
    expect(a.response.allowed).toBe(allowed);
    if (!allowed) expect(a.response.status?.code).toBe(422);
  });

  it('refuses a review of another resource (a misregistered webhook)', () => {
    const a = validateCdiReview(review('datavolumes', 'CREATE', {})) as unknown as Answer;
    expect(a.response).toMatchObject({
      allowed: false,
      status: { code: 400, message: 'resource is datavolumes but request is: cdis' },
    });
  });

  it('names every problem in the message and the causes', () => {
    const a = validateStorageProfileReview(
      review('storageprofiles', 'CREATE', {
        cloneStrategy: 'teleport',
        claimPropertySets: [{ accessModes: ['Nope'] }],
      }),
    );
    expect(a).toMatchObject({
      response: {
        status: {
          message:
            'spec.cloneStrategy: Unsupported value: "teleport": supported values: "copy", "snapshot", "csi-clone", ' +
            'spec.claimPropertySets[0].accessModes: Invalid value: "array": Illegal AccessMode, ' +
            'spec.claimPropertySets[0].volumeMode: Required value',
          details: {
            causes: [
              { field: 'spec.cloneStrategy' },
              { field: 'spec.claimPropertySets[0].accessModes' },
              { field: 'spec.claimPropertySets[0].volumeMode' },
            ],
          },
        },
      },
    });
  });
});
