// SPDX-License-Identifier: Apache-2.0
/**
 * The DataVolume validating webhook, review in and review out: CDI's messages for invalid specs at
 * create time, refused spec updates, and what passes (a clone of a claim that does not exist yet,
 * metadata edits).
 */
import { describe, expect, it } from 'vitest';
import { validateDataVolumeReview } from './datavolume-validate.js';

const storage = { resources: { requests: { storage: '1Gi' } } };
const http = { source: { http: { url: 'http://h/disk.qcow2' } }, storage };

function review(
  spec: unknown,
  operation = 'CREATE',
  oldSpec?: unknown,
  resource = { group: 'cdi.kubevirt.io', version: 'v1beta1', resource: 'datavolumes' },
): unknown {
  const object = (s: unknown, labels?: Record<string, string>): unknown => ({
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    metadata: { name: 'dv', namespace: 'ns', ...(labels === undefined ? {} : { labels }) },
    spec: s,
  });
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-1',
      operation,
      resource,
      namespace: 'ns',
      name: 'dv',
      object: object(spec, operation === 'UPDATE' ? { edited: 'yes' } : undefined),
      ...(oldSpec === undefined ? {} : { oldObject: object(oldSpec) }),
    },
  };
}

interface Response {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason?: string; message: string; details?: { causes: unknown[] } };
}

const responseOf = (answer: unknown): Response => (answer as { response: Response }).response;

describe('DataVolume validating webhook', () => {
  it.each<{ what: string; spec: unknown; message: string }>([
    { what: 'no source', spec: { storage }, message: 'Missing Data volume source' },
    {
      what: 'two sources',
      spec: { source: { http: { url: 'http://h/x' }, blank: {} }, storage },
      message: 'Multiple Data volume sources: http, blank',
    },
    {
      what: 'no size with pvc',
      spec: { source: { http: { url: 'http://h/x' } }, pvc: { accessModes: ['ReadWriteOnce'] } },
      message: 'PVC size is missing',
    },
    {
      what: 'no size for an import with storage',
      spec: { source: { blank: {} }, storage: {} },
      message: 'PVC size is missing',
    },
    {
      what: 'a URL that is not one',
      spec: { source: { http: { url: 'not a url' } }, storage },
      message: 'source http url "not a url" is not a valid URL',
    },
    {
      what: 'a URL scheme CDI does not fetch',
      spec: { source: { http: { url: 'ftp://h/x' } }, storage },
      message: 'source http url scheme "ftp" is not one of: http, https',
    },
    {
      what: 'a checksum of the wrong length',
      spec: { source: { http: { url: 'http://h/x', checksum: 'sha256:abc' } }, storage },
      message:
        'Invalid checksum format: sha256:abc (want algorithm:hex with md5, sha1, sha256 or sha512)',
    },
    {
      what: 'an unknown contentType',
      spec: { ...http, contentType: 'tarball' },
      message: 'ContentType not one of: kubevirt, archive',
    },
    {
      what: 'an archive into a Block volume',
      spec: {
        source: { http: { url: 'http://h/a.tar' } },
        contentType: 'archive',
        storage: { ...storage, volumeMode: 'Block' },
      },
      message: 'ContentType Archive cannot have block volumeMode',
    },
    {
      what: 'both pvc and storage',
      spec: { ...http, pvc: { accessModes: ['ReadWriteOnce'], ...storage } },
      message: 'Duplicate storage definition, both target storage and target pvc defined',
    },
    {
      what: 'neither pvc nor storage',
      spec: { source: { blank: {} } },
      message: 'Missing Data volume PVC',
    },
  ])('refuses $what at create time with CDI message', ({ spec, message }) => {
    const answer = responseOf(validateDataVolumeReview(review(spec)));
    expect(answer).toMatchObject({
      uid: 'u-1',
      allowed: false,
      status: { code: 422, reason: 'Invalid', message },
    });
    expect(answer.status?.details?.causes).toEqual([
      { type: 'FieldValueInvalid', message, field: 'spec' },
    ]);
  });

  it('names every problem of a spec with several', () => {
    const answer = responseOf(
      validateDataVolumeReview(review({ source: { http: { url: 'ftp://h/x' } } })),
    );
    expect(answer.status?.message).toBe(
      'source http url scheme "ftp" is not one of: http, https, Missing Data volume PVC',
    );
    expect(answer.status?.details?.causes).toHaveLength(2);
  });

  it.each<{ what: string; spec: unknown }>([
    { what: 'an import', spec: http },
    {
      what: 'a clone of a claim that does not exist yet (it waits)',
      spec: { source: { pvc: { namespace: 'golden', name: 'not-yet' } }, storage: {} },
    },
    { what: 'an upload', spec: { source: { upload: {} }, storage } },
  ])('allows $what', ({ spec }) => {
    expect(responseOf(validateDataVolumeReview(review(spec)))).toEqual({
      uid: 'u-1',
      allowed: true,
    });
  });

  it('refuses a spec update with CDI message', () => {
    const changed = { ...http, source: { http: { url: 'http://foo.bar' } } };
    const answer = responseOf(validateDataVolumeReview(review(changed, 'UPDATE', http)));
    expect(answer).toMatchObject({
      allowed: false,
      status: { code: 422, message: 'Cannot update DataVolume Spec' },
    });
    expect(answer.status?.details?.causes).toEqual([
      {
        type: 'FieldValueDuplicate',
        message: 'Cannot update DataVolume Spec',
        field: 'DataVolume.Spec',
      },
    ]);
  });

  it('allows an update that leaves the spec alone (labels, annotations)', () => {
    expect(responseOf(validateDataVolumeReview(review(http, 'UPDATE', http))).allowed).toBe(true);
  });

  it('allows a deletion without looking at it', () => {
    expect(responseOf(validateDataVolumeReview(review({}, 'DELETE'))).allowed).toBe(true);
  });

  it('refuses a review for another resource (a misregistered webhook)', () => {
    const answer = responseOf(
      validateDataVolumeReview(
        review(http, 'CREATE', undefined, { group: '', version: 'v1', resource: 'pods' }),
      ),
    );
    expect(answer).toMatchObject({
      allowed: false,
      status: { code: 400, message: 'resource is pods but request is: datavolumes' },
    });
  });
});
