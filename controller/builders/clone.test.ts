// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations, ImporterEnv, PodPaths, SourceKinds } from '../../common/contract.js';
import type { DataVolume, DataVolumeSpec } from '../../common/api/datavolume.js';
import { effectiveConfig, parseControllerSettings } from '../config.js';
import { cloneRequestOf } from './claim.js';
import { cloneSizeProblem, defaultCloneSize, sizedSource } from './clone-size.js';
import { buildImporterPod } from './importer-pod.js';
import { buildTargetPvc } from './pvc.js';

const MI = 1024 * 1024;
const settings = parseControllerSettings({ IMPORTER_IMAGE: 'reg/importer:v1' }, 'test');
const config = effectiveConfig(undefined, [
  { name: 'standard', isDefault: true, volumeBindingMode: 'Immediate' },
]);

function source(size: string, block = false): V1PersistentVolumeClaim {
  return {
    metadata: { name: 'golden', namespace: 'ns' },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: size } },
      ...(block ? { volumeMode: 'Block' } : {}),
    },
    status: { phase: 'Bound' },
  };
}

function target(block: boolean): V1PersistentVolumeClaim {
  return {
    metadata: {
      name: 'disk',
      namespace: 'ns',
      uid: 'pvc-uid',
      annotations: { [Annotations.CloneRequest]: 'ns/golden' },
      ownerReferences: [
        { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', name: 'disk', uid: 'dv' },
      ],
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
      ...(block ? { volumeMode: 'Block' } : {}),
    },
  };
}

function env(pod: V1Pod): Record<string, string> {
  return Object.fromEntries(
    (pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? '']),
  );
}

describe('importer pod of a clone target', () => {
  it.each([
    {
      what: 'filesystem source into a filesystem target',
      sourceBlock: false,
      targetBlock: false,
      endpoint: PodPaths.CloneSourceImage,
      mounts: ['cdi-data-vol:/data', 'cdi-tmp:/tmp', 'cdi-clone-source:/source:ro'],
      devices: [] as string[],
    },
    {
      what: 'block source into a filesystem target',
      sourceBlock: true,
      targetBlock: false,
      endpoint: PodPaths.CloneSourceDevice,
      mounts: ['cdi-data-vol:/data', 'cdi-tmp:/tmp'],
      devices: ['cdi-clone-source:/dev/cdi-clone-source'],
    },
    {
      what: 'filesystem source into a block target',
      sourceBlock: false,
      targetBlock: true,
      endpoint: PodPaths.CloneSourceImage,
      mounts: ['cdi-tmp:/tmp', 'cdi-clone-source:/source:ro'],
      devices: ['cdi-data-vol:/dev/cdi-block-volume'],
    },
    {
      what: 'block source into a block target',
      sourceBlock: true,
      targetBlock: true,
      endpoint: PodPaths.CloneSourceDevice,
      mounts: ['cdi-tmp:/tmp'],
      devices: ['cdi-data-vol:/dev/cdi-block-volume', 'cdi-clone-source:/dev/cdi-clone-source'],
    },
  ])('$what', ({ sourceBlock, targetBlock, endpoint, mounts, devices }) => {
    const pod = buildImporterPod({
      pvc: target(targetBlock),
      config,
      settings,
      scratch: false,
      cloneSource: source('1Gi', sourceBlock),
    });
    const c = pod.spec?.containers[0];
    expect(env(pod)[ImporterEnv.Source]).toBe(SourceKinds.Pvc);
    expect(env(pod)[ImporterEnv.Endpoint]).toBe(endpoint);
    expect(
      (c?.volumeMounts ?? []).map(
        (m) => `${m.name}:${m.mountPath}${m.readOnly === true ? ':ro' : ''}`,
      ),
    ).toEqual(mounts);
    expect((c?.volumeDevices ?? []).map((d) => `${d.name}:${d.devicePath}`)).toEqual(devices);
    // The source claim is attached read-only: a clone never writes its source.
    const vol = pod.spec?.volumes?.find((v) => v.name === 'cdi-clone-source');
    expect(vol?.persistentVolumeClaim).toEqual({ claimName: 'golden', readOnly: true });
    // The target stays the pod's first volume (the executor reads its claim from there).
    expect(pod.spec?.volumes?.[0]?.persistentVolumeClaim?.claimName).toBe('disk');
  });
});

function cloneDv(spec: Partial<DataVolumeSpec>): DataVolume {
  return {
    metadata: { name: 'disk', namespace: 'ns', uid: 'dv-uid' },
    spec: { source: { pvc: { name: 'golden' } }, ...spec },
  };
}

describe('target claim of a clone', () => {
  it.each([
    {
      what: 'storage without size, filesystem from filesystem: the source size',
      spec: { storage: {} },
      src: source('100Mi'),
      want: String(100 * MI),
      mode: 'Filesystem',
    },
    {
      what: 'storage without size, block from block: the source size',
      spec: { storage: { volumeMode: 'Block' } },
      src: source('64Mi', true),
      want: String(64 * MI),
      mode: 'Block',
    },
    {
      what: 'storage without size, block from filesystem: the source content',
      spec: { storage: { volumeMode: 'Block' } },
      src: source('106Mi'),
      want: String(100 * MI),
      mode: 'Block',
    },
    {
      what: 'storage without size, filesystem from block: the content plus overhead',
      spec: { storage: {} },
      src: source('100Mi', true),
      want: String(106 * MI),
      mode: 'Filesystem',
    },
    {
      what: 'storage with a size: the size, inflated as for any import',
      spec: { storage: { resources: { requests: { storage: '1Gi' } } } },
      src: source('100Mi'),
      want: String(Math.ceil(1024 * MI * 1.06)),
      mode: 'Filesystem',
    },
    {
      what: 'pvc API: the size as written',
      spec: {
        pvc: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '2Gi' } } },
      },
      src: source('100Mi'),
      want: '2Gi',
      mode: undefined,
    },
  ])('$what', ({ spec, src, want, mode }) => {
    const pvc = buildTargetPvc(cloneDv(spec), config, {
      ref: { namespace: 'ns', name: 'golden' },
      source: sizedSource(src),
    });
    expect(pvc.spec?.resources?.requests?.['storage']).toBe(want);
    expect(pvc.spec?.volumeMode).toBe(mode);
    expect(pvc.metadata?.annotations?.[Annotations.CloneRequest]).toBe('ns/golden');
    // No import annotations: the clone request alone makes the import reconcile copy the source.
    expect(pvc.metadata?.annotations?.[Annotations.Endpoint]).toBeUndefined();
    expect(cloneRequestOf(pvc)).toEqual({ namespace: 'ns', name: 'golden' });
  });
});

describe('clone sizes', () => {
  const fs = (mi: number): { bytes: number; block: boolean; storageClassName: undefined } => ({
    bytes: mi * MI,
    block: false,
    storageClassName: undefined,
  });
  const blk = (mi: number): { bytes: number; block: boolean; storageClassName: undefined } => ({
    bytes: mi * MI,
    block: true,
    storageClassName: undefined,
  });
  it.each([
    { what: 'same size, filesystem', src: fs(100), tgt: fs(100), ok: true },
    { what: 'larger target', src: fs(100), tgt: fs(200), ok: true },
    { what: 'smaller target', src: fs(100), tgt: fs(50), ok: false },
    {
      what: 'block into a filesystem claim of the same request',
      src: blk(100),
      tgt: fs(100),
      ok: false,
    },
    {
      what: 'block into a filesystem claim with room for overhead',
      src: blk(100),
      tgt: fs(107),
      ok: true,
    },
    { what: 'filesystem into a block claim of its content', src: fs(106), tgt: blk(100), ok: true },
    { what: 'block into a smaller block', src: blk(100), tgt: blk(99), ok: false },
  ])('$what', ({ src, tgt, ok }) => {
    const problem = cloneSizeProblem(src, tgt, config);
    expect(problem === undefined).toBe(ok);
    if (!ok) {
      expect(problem).toContain(
        "The clone doesn't meet the validation requirements: target resources requests storage size is smaller than the source",
      );
    }
  });

  it('defaults a target so that it passes the size check, in every mode pair', () => {
    for (const src of [fs(100), blk(100), fs(1000), blk(3)]) {
      for (const block of [false, true]) {
        const bytes = defaultCloneSize(src, { block, storageClassName: undefined }, config);
        expect(cloneSizeProblem(src, { bytes, block, storageClassName: undefined }, config)).toBe(
          undefined,
        );
      }
    }
  });
});
