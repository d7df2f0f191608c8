// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import type { DataVolume, DataVolumeSpec } from '../api/datavolume.js';
import { checksumProblem, specUpdateProblem, validateDataVolume } from './validate.js';

const SHA256 = 'a'.repeat(64);
const storage = { resources: { requests: { storage: '1Gi' } } };

function dv(spec: DataVolumeSpec): DataVolume {
  return { metadata: { name: 'dv', namespace: 'ns', uid: 'u1' }, spec };
}

describe('validateDataVolume', () => {
  it.each<{ what: string; spec: DataVolumeSpec }>([
    { what: 'http with storage', spec: { source: { http: { url: 'http://h/x.qcow2' } }, storage } },
    {
      what: 'http with pvc',
      spec: {
        source: { http: { url: 'https://h/x' } },
        pvc: { accessModes: ['ReadWriteOnce'], ...storage },
      },
    },
    {
      what: 'http with checksum',
      spec: { source: { http: { url: 'http://h/x', checksum: `sha256:${SHA256}` } }, storage },
    },
    { what: 's3 endpoint', spec: { source: { s3: { url: 'http://minio:9000/b/k' } }, storage } },
    { what: 'gcs gs:// URL', spec: { source: { gcs: { url: 'gs://b/disk.img' } }, storage } },
    {
      what: 'gcs https URL with a key Secret',
      spec: {
        source: { gcs: { url: 'https://storage.googleapis.com/b/o', secretRef: 'k' } },
        storage,
      },
    },
    { what: 'blank', spec: { source: { blank: {} }, storage } },
    {
      what: 'registry',
      spec: { source: { registry: { url: 'docker://r:5000/img:tag' } }, storage },
    },
    {
      what: 'registry pulled by the node',
      spec: {
        source: { registry: { url: 'docker://r:5000/img:tag', pullMethod: 'node' } },
        storage,
      },
    },
    {
      what: 'archive to filesystem',
      spec: { source: { http: { url: 'http://h/a.tar' } }, contentType: 'archive', storage },
    },
    {
      what: 'block target',
      spec: {
        source: { http: { url: 'http://h/x' } },
        storage: { ...storage, volumeMode: 'Block' },
      },
    },
    {
      what: 'pvc clone, same namespace',
      spec: { source: { pvc: { namespace: 'ns', name: 'b' } }, storage },
    },
    { what: 'pvc clone, namespace left out', spec: { source: { pvc: { name: 'b' } }, storage } },
    {
      what: 'pvc clone without size (storage API)',
      spec: { source: { pvc: { name: 'b' } }, storage: {} },
    },
    {
      what: 'sourceRef to a DataSource',
      spec: { sourceRef: { kind: 'DataSource', name: 'golden' }, storage: {} },
    },
    {
      what: 'sourceRef to a DataSource in another namespace (resolved later)',
      spec: { sourceRef: { kind: 'DataSource', namespace: 'images', name: 'golden' }, storage },
    },
  ])('accepts $what', ({ spec }) => {
    expect(validateDataVolume(dv(spec))).toEqual([]);
  });

  it.each<{ what: string; spec: DataVolumeSpec; message: string }>([
    { what: 'no source', spec: { storage }, message: 'Missing Data volume source' },
    { what: 'empty source', spec: { source: {}, storage }, message: 'Missing Data volume source' },
    {
      what: 'two sources',
      spec: { source: { http: { url: 'http://h/x' }, blank: {} }, storage },
      message: 'Multiple Data volume sources: http, blank',
    },
    {
      what: 'bad checksum syntax',
      spec: { source: { http: { url: 'http://h/x', checksum: 'sha256:1234' } }, storage },
      message: 'Invalid checksum format: sha256:1234',
    },
    {
      what: 'unknown checksum algorithm',
      spec: { source: { http: { url: 'http://h/x', checksum: `crc32:${SHA256}` } }, storage },
      message: 'Invalid checksum format',
    },
    {
      what: 'archive to a block volume',
      spec: {
        source: { http: { url: 'http://h/x' } },
        contentType: 'archive',
        storage: { ...storage, volumeMode: 'Block' },
      },
      message: 'ContentType Archive cannot have block volumeMode',
    },
    {
      what: 'unknown content type',
      spec: { source: { http: { url: 'http://h/x' } }, contentType: 'iso', storage },
      message: 'ContentType not one of: kubevirt, archive',
    },
    { what: 'no claim', spec: { source: { blank: {} } }, message: 'Missing Data volume PVC' },
    {
      what: 'both pvc and storage',
      spec: { source: { blank: {} }, storage, pvc: { accessModes: ['ReadWriteOnce'], ...storage } },
      message: 'Duplicate storage definition',
    },
    {
      what: 'missing size',
      spec: { source: { blank: {} }, storage: {} },
      message: 'PVC size is missing',
    },
    {
      what: 'tiny size',
      spec: { source: { blank: {} }, storage: { resources: { requests: { storage: '1Ki' } } } },
      message: 'too small',
    },
    {
      what: 'pvc api without access mode',
      spec: { source: { blank: {} }, pvc: storage },
      message: 'exactly one entry',
    },
    {
      what: 'ftp url',
      spec: { source: { http: { url: 'ftp://h/x' } }, storage },
      message: 'scheme "ftp" is not one of',
    },
    {
      what: 'missing url',
      spec: { source: { http: {} }, storage },
      message: 'source http url is missing',
    },
    {
      what: 'blank archive',
      spec: { source: { blank: {} }, contentType: 'archive', storage },
      message: 'cannot be blank',
    },
    {
      what: 'registry imageStream',
      spec: { source: { registry: { imageStream: 'fedora:39', pullMethod: 'node' } }, storage },
      message: 'Source registry imageStream is not supported: it names an OpenShift ImageStream',
    },
    {
      what: 'registry unknown pull method',
      spec: { source: { registry: { url: 'docker://r/i', pullMethod: 'kubelet' } }, storage },
      message: 'ImportMethod kubelet is neither pod or node',
    },
    {
      what: 'registry archive',
      spec: { source: { registry: { url: 'docker://r/i' } }, contentType: 'archive', storage },
      message: 'ContentType must be kubevirt when Source is Registry',
    },
    {
      what: 'clone without a source name',
      spec: { source: { pvc: {} }, storage },
      message: 'Source pvc name is missing',
    },
    {
      what: 'archive clone',
      spec: { source: { pvc: { name: 'b' } }, contentType: 'archive', storage },
      message: 'ContentType archive is not supported for clones',
    },
    {
      what: 'sourceRef of another kind',
      spec: { sourceRef: { kind: 'VolumeSnapshot', name: 'x' }, storage },
      message: 'Unsupported sourceRef kind "VolumeSnapshot"',
    },
    {
      what: 'sourceRef without name',
      spec: { sourceRef: { kind: 'DataSource' }, storage },
      message: 'SourceRef name is missing',
    },
    {
      what: 'both source and sourceRef',
      spec: { source: { blank: {} }, sourceRef: { kind: 'DataSource', name: 'x' }, storage },
      message: 'either Source or SourceRef',
    },
    {
      what: 'clone with the pvc API and no size',
      spec: { source: { pvc: { name: 'b' } }, pvc: { accessModes: ['ReadWriteOnce'] } },
      message: 'PVC size is missing',
    },
    {
      what: 'snapshot clone without a name',
      spec: { source: { snapshot: { namespace: 'ns' } }, storage },
      message: 'Source snapshot name is missing',
    },
    {
      what: 'gcs with an s3 URL',
      spec: { source: { gcs: { url: 's3://b/k' } }, storage },
      message: 'source gcs url scheme "s3" is not one of: gs, http, https',
    },
    {
      what: 'gcs without a URL',
      spec: { source: { gcs: {} }, storage },
      message: 'source gcs url is missing',
    },
  ])('rejects $what', ({ spec, message }) => {
    const problems = validateDataVolume(dv(spec));
    expect(problems.join('; ')).toContain(message);
  });

  it('rejects a DataVolume without spec', () => {
    expect(validateDataVolume({ metadata: { name: 'x' } })).toEqual(['Missing Data volume spec']);
  });
});

describe('checksumProblem', () => {
  it.each([
    { what: 'md5', spec: `md5:${'0'.repeat(32)}`, ok: true },
    { what: 'sha1 upper-case', spec: `SHA1:${'A'.repeat(40)}`, ok: true },
    { what: 'sha512', spec: `sha512:${'f'.repeat(128)}`, ok: true },
    { what: 'no colon', spec: SHA256, ok: false },
    { what: 'non-hex', spec: `sha256:${'g'.repeat(64)}`, ok: false },
    { what: 'short', spec: 'md5:abc', ok: false },
  ])('$what', ({ spec, ok }) => {
    expect(checksumProblem(spec) === undefined).toBe(ok);
  });
});

describe('specUpdateProblem', () => {
  const http = { source: { http: { url: 'http://h/x' } }, storage };
  const vddk = {
    source: { vddk: { url: 'https://vc/sdk', uuid: 'u', backingFile: 'b', secretRef: 's' } },
    storage,
    checkpoints: [{ previous: '', current: 'c1' }],
  };
  it.each<{ what: string; before: DataVolumeSpec; after: DataVolumeSpec; refused: boolean }>([
    { what: 'an unchanged spec', before: http, after: structuredClone(http), refused: false },
    {
      what: 'the same spec with keys in another order',
      before: { storage, source: { http: { url: 'http://h/x' } } },
      after: http,
      refused: false,
    },
    {
      what: 'a new URL',
      before: http,
      after: { ...http, source: { http: { url: 'http://foo.bar' } } },
      refused: true,
    },
    {
      what: 'a new size',
      before: http,
      after: { ...http, storage: { resources: { requests: { storage: '2Gi' } } } },
      refused: true,
    },
    {
      what: 'a new contentType',
      before: http,
      after: { ...http, contentType: 'archive' },
      refused: true,
    },
    {
      what: "a multi-stage import's next checkpoint",
      before: vddk,
      after: { ...vddk, checkpoints: [...vddk.checkpoints, { previous: 'c1', current: 'c2' }] },
      refused: false,
    },
    {
      what: "a multi-stage import's final checkpoint",
      before: vddk,
      after: { ...vddk, finalCheckpoint: true },
      refused: false,
    },
    {
      what: 'checkpoints added to a single-stage import',
      before: http,
      after: { ...http, checkpoints: [{ previous: '', current: 'c1' }] },
      refused: true,
    },
    {
      what: 'a multi-stage import whose source changes with its checkpoint',
      before: vddk,
      after: {
        ...vddk,
        finalCheckpoint: true,
        storage: { resources: { requests: { storage: '9Gi' } } },
      },
      refused: true,
    },
  ])('$what: refused=$refused', ({ before, after, refused }) => {
    expect(specUpdateProblem(dv(before), dv(after))).toBe(
      refused ? 'Cannot update DataVolume Spec' : undefined,
    );
  });
});
