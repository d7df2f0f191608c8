// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { Annotations, Labels } from '../../common/contract.js';
import type { DataVolume, DataVolumeSpec } from '../../common/api/datavolume.js';
import { effectiveConfig } from '../config.js';
import { buildTargetPvc, renderClaimSpec, sourceAnnotations, storageModes } from './pvc.js';

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
      what: 'gcs with a key Secret',
      source: { gcs: { url: 'gs://b/disk.img', secretRef: 'gcs-key' } },
      want: {
        [Annotations.Source]: 'gcs',
        [Annotations.Endpoint]: 'gs://b/disk.img',
        [Annotations.SecretName]: 'gcs-key',
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
      // Named at creation: no patch is needed to name it before the pod is made.
      [Annotations.ImportPodName]: 'importer-disk',
    });
  });

  it('names no importer pod on an upload target', () => {
    const pvc = buildTargetPvc(
      dv({ source: { upload: {} }, pvc: { resources: { requests: { storage: '1Gi' } } } }),
      config,
    );
    expect(pvc.metadata?.annotations?.[Annotations.UploadTarget]).toBe('');
    expect(pvc.metadata?.annotations?.[Annotations.ImportPodName]).toBeUndefined();
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

  it.each([
    { what: 'no class named: the virt default', named: undefined, want: 'virt' },
    { what: 'a class named wins', named: 'fat', want: 'fat' },
  ])('default virt storage class: $what', ({ named, want }) => {
    const withVirt = effectiveConfig({}, [
      ...classes,
      { name: 'virt', isDefault: false, isDefaultVirt: true, volumeBindingMode: 'Immediate' },
    ]);
    const pvc = buildTargetPvc(
      dv({
        source: { blank: {} },
        storage: {
          ...(named === undefined ? {} : { storageClassName: named }),
          resources: { requests: { storage: '1Gi' } },
        },
      }),
      withVirt,
    );
    expect(pvc.spec?.storageClassName).toBe(want);
  });

  it.each([
    { what: 'gates unset (default on)', gates: undefined, immediate: undefined },
    { what: 'gate listed', gates: ['HonorWaitForFirstConsumer'], immediate: undefined },
    { what: 'gates set without it', gates: [], immediate: 'true' },
  ])('HonorWaitForFirstConsumer: $what', ({ gates, immediate }) => {
    const pvc = buildTargetPvc(
      dv({ source: { blank: {} }, storage: { resources: { requests: { storage: '1Gi' } } } }),
      effectiveConfig(gates === undefined ? {} : { featureGates: gates }, classes),
    );
    expect(pvc.metadata?.annotations?.[Annotations.BindImmediate]).toBe(immediate);
  });
});

describe('storageModes and renderClaimSpec with StorageProfiles', () => {
  const RWO = 'ReadWriteOnce';
  const RWX = 'ReadWriteMany';
  const profiled = effectiveConfig(
    { filesystemOverhead: { global: '0.06', storageClass: { fat: '0.5' } } },
    classes,
    {
      standard: [
        { accessModes: [RWX], volumeMode: 'Block' },
        { accessModes: [RWO], volumeMode: 'Block' },
        { accessModes: [RWO], volumeMode: 'Filesystem' },
      ],
      fat: [{ accessModes: [RWO] }],
      empty: [],
    },
  );
  const size = { resources: { requests: { storage: '100Mi' } } };
  it.each<{
    what: string;
    storage: NonNullable<DataVolumeSpec['storage']>;
    modes: string[];
    volumeMode: string;
    size: string;
  }>([
    {
      what: 'nothing given: the default class profile first set (Block: not inflated)',
      storage: { ...size },
      modes: [RWX],
      volumeMode: 'Block',
      size: '100Mi',
    },
    {
      what: 'FromStorageProfile counts as not given',
      storage: { ...size, volumeMode: 'FromStorageProfile' },
      modes: [RWX],
      volumeMode: 'Block',
      size: '100Mi',
    },
    {
      what: 'only Filesystem given: access modes of the first Filesystem set, inflated',
      storage: { ...size, volumeMode: 'Filesystem' },
      modes: [RWO],
      volumeMode: 'Filesystem',
      size: String(Math.ceil(100 * 1024 * 1024 * 1.06)),
    },
    {
      what: 'only RWO given: volume mode of the first set holding it',
      storage: { ...size, accessModes: [RWO] },
      modes: [RWO],
      volumeMode: 'Block',
      size: '100Mi',
    },
    {
      what: 'a set without volumeMode means Filesystem',
      storage: { ...size, storageClassName: 'fat' },
      modes: [RWO],
      volumeMode: 'Filesystem',
      size: String(150 * 1024 * 1024),
    },
    {
      what: 'a profile without sets: RWO Filesystem',
      storage: { ...size, storageClassName: 'empty' },
      modes: [RWO],
      volumeMode: 'Filesystem',
      size: String(Math.ceil(100 * 1024 * 1024 * 1.06)),
    },
    {
      what: 'a class without profile: RWO Filesystem',
      storage: { ...size, storageClassName: 'nowhere' },
      modes: [RWO],
      volumeMode: 'Filesystem',
      size: String(Math.ceil(100 * 1024 * 1024 * 1.06)),
    },
    {
      what: 'a volume mode no set has: RWO',
      storage: { ...size, storageClassName: 'fat', volumeMode: 'Block' },
      modes: [RWO],
      volumeMode: 'Block',
      size: '100Mi',
    },
    {
      what: 'both given: the profile is not consulted',
      storage: { ...size, accessModes: [RWX], volumeMode: 'Filesystem' },
      modes: [RWX],
      volumeMode: 'Filesystem',
      size: String(Math.ceil(100 * 1024 * 1024 * 1.06)),
    },
  ])('$what', ({ storage, modes, volumeMode, size: want }) => {
    expect(storageModes(storage, profiled)).toEqual({ accessModes: modes, volumeMode });
    const rendered = renderClaimSpec(dv({ storage }), profiled);
    expect(rendered.accessModes).toEqual(modes);
    expect(rendered.volumeMode).toBe(volumeMode);
    expect(rendered.resources?.requests?.['storage']).toBe(want);
  });

  it('a Block claim from the profile gets no filling-up label', () => {
    const pvc = buildTargetPvc(dv({ storage: { ...size } }), profiled);
    expect(pvc.spec?.volumeMode).toBe('Block');
    expect(pvc.metadata?.labels?.[Labels.FillingUpAlert]).toBeUndefined();
  });

  it('does not alias the profile access modes', () => {
    const rendered = renderClaimSpec(dv({ storage: { ...size } }), profiled);
    rendered.accessModes?.push(RWO);
    expect(profiled.claimPropertySets?.['standard']?.[0]?.accessModes).toEqual([RWX]);
  });
});
