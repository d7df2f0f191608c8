// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import type { DataVolume, DataVolumeSpec } from '../../common/datavolume.js';
import { effectiveConfig } from '../config.js';
import { buildTargetPvc, renderClaimSpec, sourceAnnotations } from './pvc.js';

const classes = [
  { name: 'standard', isDefault: true, volumeBindingMode: 'Immediate' },
  { name: 'fat', isDefault: false, volumeBindingMode: 'Immediate' },
];
const config = effectiveConfig(
  { filesystemOverhead: { global: '0.06', storageClass: { fat: '0.5' } } },
  classes,
);

function dv(spec: DataVolumeSpec): DataVolume {
  return {
    metadata: {
      name: 'disk',
      namespace: 'ns',
      uid: 'dv-uid',
      labels: { team: 'a' },
      annotations: { 'x/y': 'z' },
    },
    spec,
  };
}

describe('renderClaimSpec', () => {
  it.each<{
    what: string;
    spec: DataVolumeSpec;
    size: string;
    modes: string[];
    volumeMode: string | undefined;
  }>([
    {
      what: 'storage API, 100Mi with overhead 0.5 becomes 150Mi',
      spec: { storage: { storageClassName: 'fat', resources: { requests: { storage: '100Mi' } } } },
      size: String(150 * 1024 * 1024),
      modes: ['ReadWriteOnce'],
      volumeMode: 'Filesystem',
    },
    {
      what: 'storage API on the default class gets the global 6%',
      spec: { storage: { resources: { requests: { storage: '1Gi' } } } },
      size: String(Math.ceil(1024 * 1024 * 1024 * 1.06)),
      modes: ['ReadWriteOnce'],
      volumeMode: 'Filesystem',
    },
    {
      what: 'storage API block is not inflated',
      spec: {
        storage: {
          storageClassName: 'fat',
          volumeMode: 'Block',
          resources: { requests: { storage: '100Mi' } },
        },
      },
      size: '100Mi',
      modes: ['ReadWriteOnce'],
      volumeMode: 'Block',
    },
    {
      what: 'storage API keeps the given access modes',
      spec: {
        storage: {
          accessModes: ['ReadWriteMany'],
          volumeMode: 'FromStorageProfile',
          resources: { requests: { storage: '1Mi' } },
        },
      },
      size: String(Math.ceil(1024 * 1024 * 1.06)),
      modes: ['ReadWriteMany'],
      volumeMode: 'Filesystem',
    },
    {
      what: 'pvc API is used verbatim',
      spec: {
        pvc: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '100Mi' } } },
      },
      size: '100Mi',
      modes: ['ReadWriteOnce'],
      volumeMode: undefined,
    },
  ])('$what', ({ spec, size, modes, volumeMode }) => {
    const rendered = renderClaimSpec(dv(spec), config);
    expect(rendered.resources?.requests?.['storage']).toBe(size);
    expect(rendered.accessModes).toEqual(modes);
    expect(rendered.volumeMode).toBe(volumeMode);
  });
});

describe('sourceAnnotations', () => {
  it.each<{ what: string; source: DataVolumeSpec['source']; want: Record<string, string> }>([
    {
      what: 'http with everything',
      source: {
        http: {
          url: 'https://h/x.img',
          secretRef: 's',
          certConfigMap: 'ca',
          checksum: 'sha256:ab',
          insecureSkipVerify: true,
          extraHeaders: ['A: 1', 'B: 2'],
          secretExtraHeaders: ['hs'],
        },
      },
      want: {
        [Annotations.Source]: 'http',
        [Annotations.Endpoint]: 'https://h/x.img',
        [Annotations.SecretName]: 's',
        [Annotations.CertConfigMap]: 'ca',
        [Annotations.Checksum]: 'sha256:ab',
        [Annotations.InsecureSkipVerify]: 'true',
        [`${Annotations.ExtraHeadersPrefix}.0`]: 'A: 1',
        [`${Annotations.ExtraHeadersPrefix}.1`]: 'B: 2',
        [`${Annotations.SecretExtraHeadersPrefix}.0`]: 'hs',
      },
    },
    {
      what: 's3',
      source: { s3: { url: 'http://minio/b/k', secretRef: 'creds' } },
      want: {
        [Annotations.Source]: 's3',
        [Annotations.Endpoint]: 'http://minio/b/k',
        [Annotations.SecretName]: 'creds',
      },
    },
    {
      what: 'registry with architecture',
      source: { registry: { url: 'docker://r/i:t', platform: { architecture: 'arm64' } } },
      want: {
        [Annotations.Source]: 'registry',
        [Annotations.Endpoint]: 'docker://r/i:t',
        [Annotations.RegistryImageArchitecture]: 'arm64',
      },
    },
    { what: 'blank', source: { blank: {} }, want: { [Annotations.Source]: 'none' } },
    { what: 'upload', source: { upload: {} }, want: { [Annotations.UploadTarget]: '' } },
  ])('$what', ({ source, want }) => {
    expect(sourceAnnotations(source)).toEqual(want);
  });
});

describe('buildTargetPvc', () => {
  it('names, owns, labels and annotates the claim as CDI does', () => {
    const pvc = buildTargetPvc(
      dv({
        source: { http: { url: 'http://h/x' } },
        storage: { resources: { requests: { storage: '1Gi' } } },
        priorityClassName: 'high',
        preallocation: true,
      }),
      config,
    );
    expect(pvc.metadata?.name).toBe('disk');
    expect(pvc.metadata?.namespace).toBe('ns');
    expect(pvc.metadata?.ownerReferences).toEqual([
      {
        apiVersion: 'cdi.kubevirt.io/v1beta1',
        kind: 'DataVolume',
        name: 'disk',
        uid: 'dv-uid',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(pvc.metadata?.labels).toEqual({
      team: 'a',
      app: 'containerized-data-importer',
      'alerts.k8s.io/KubePersistentVolumeFillingUp': 'disabled',
    });
    expect(pvc.metadata?.annotations).toMatchObject({
      'x/y': 'z',
      [Annotations.Endpoint]: 'http://h/x',
      [Annotations.ContentType]: 'kubevirt',
      [Annotations.PreallocationRequested]: 'true',
      [Annotations.PriorityClassName]: 'high',
      [Annotations.PodRestarts]: '0',
      [Annotations.CreatedForDataVolume]: 'dv-uid',
    });
  });

  it('leaves the filling-up label off block claims', () => {
    const pvc = buildTargetPvc(
      dv({
        source: { blank: {} },
        storage: { volumeMode: 'Block', resources: { requests: { storage: '1Gi' } } },
      }),
      config,
    );
    expect(pvc.metadata?.labels?.['alerts.k8s.io/KubePersistentVolumeFillingUp']).toBeUndefined();
  });
});
