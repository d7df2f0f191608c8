// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import type { DataVolume } from '../../common/api/datavolume.js';
import type { Action, CreatePvcAction, UpdateDvStatusAction } from '../actions.js';
import { effectiveConfig, type EffectiveConfig } from '../config.js';
import { decideDataVolume, type DataVolumeInput } from './decide.js';
import {
  SmartCloneAnnotations as S,
  smartTargetPhase,
  smartTargetSteps,
  type SnapshotInfo,
} from './smart-clone.js';

const P = 'csi.example.com';
const NOW = '2026-12-07T00:00:00Z';

function configWith(strategy?: string, override?: string): EffectiveConfig {
  return {
    ...effectiveConfig(undefined, [
      {
        name: 'standard',
        isDefault: true,
        volumeBindingMode: 'Immediate',
        provisioner: P,
        allowVolumeExpansion: true,
      },
      { name: 'other', isDefault: false, volumeBindingMode: 'Immediate', provisioner: 'x.io' },
    ]),
    cloneProfiles: strategy === undefined ? {} : { standard: { cloneStrategy: strategy } },
    ...(override === undefined ? {} : { cloneStrategyOverride: override }),
  };
}

const golden: V1PersistentVolumeClaim = {
  metadata: { name: 'golden', namespace: 'ns' },
  spec: {
    accessModes: ['ReadWriteOnce'],
    storageClassName: 'standard',
    volumeMode: 'Block',
    resources: { requests: { storage: '100Mi' } },
  },
  status: { phase: 'Bound', capacity: { storage: '100Mi' } },
};

function dv(storage: Record<string, unknown> = { volumeMode: 'Block' }): DataVolume {
  return {
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    metadata: { name: 'disk', namespace: 'ns', uid: 'dv-uid' },
    spec: { source: { pvc: { namespace: 'ns', name: 'golden' } }, storage },
  };
}

function decide(over: Partial<DataVolumeInput>): Action[] {
  return decideDataVolume({
    dv: dv(),
    pvc: undefined,
    config: configWith(),
    waitForFirstConsumer: false,
    now: NOW,
    cloneSource: { kind: 'claim', ref: { namespace: 'ns', name: 'golden' }, pvc: golden },
    snapshotClasses: [{ name: 'snapclass', driver: P, isDefault: true }],
    ...over,
  });
}

const created = (actions: readonly Action[]): V1PersistentVolumeClaim | undefined =>
  actions.find((a): a is CreatePvcAction => a.kind === 'createPvc')?.pvc;
const phaseOf = (actions: readonly Action[]): string | undefined =>
  actions.find((a): a is UpdateDvStatusAction => a.kind === 'updateDvStatus')?.status.phase;
const ready: SnapshotInfo = {
  ready: true,
  restoreSize: '100Mi',
  driver: P,
  block: true,
  deleting: false,
};

describe('decideDataVolume: smart clones', () => {
  it('csi-clone: the target names the source claim and starts at its size', () => {
    const actions = decide({
      config: configWith('csi-clone'),
      dv: dv({ volumeMode: 'Block', resources: { requests: { storage: '200Mi' } } }),
    });
    const pvc = created(actions);
    expect(pvc?.spec?.dataSourceRef).toEqual({ kind: 'PersistentVolumeClaim', name: 'golden' });
    expect(pvc?.spec?.resources?.requests?.['storage']).toBe('100Mi');
    expect(pvc?.metadata?.annotations?.[S.DesiredStorage]).toBe('200Mi');
    expect(pvc?.metadata?.annotations?.[Annotations.CloneRequest]).toBeUndefined();
  });

  it('snapshot (the default) without its snapshot: takes it and shows CDI phase', () => {
    const actions = decide({});
    expect(created(actions)).toBeUndefined();
    const snap = actions.find((a) => a.kind === 'createVolumeSnapshot');
    expect(snap).toMatchObject({
      snapshot: {
        metadata: { name: 'tmp-snapshot-dv-uid', namespace: 'ns' },
        spec: {
          source: { persistentVolumeClaimName: 'golden' },
          volumeSnapshotClassName: 'snapclass',
        },
      },
    });
    expect(phaseOf(actions)).toBe('SnapshotForSmartCloneInProgress');
    expect(actions).toContainEqual(
      expect.objectContaining({
        kind: 'event',
        reason: 'SnapshotForSmartCloneInProgress',
        message: 'Creating snapshot for smart-clone is in progress (for pvc ns/golden)',
      }),
    );
  });

  it('snapshot not ready yet: waits without a second snapshot', () => {
    const actions = decide({ snapshot: { ...ready, ready: false } });
    expect(actions.some((a) => a.kind === 'createVolumeSnapshot')).toBe(false);
    expect(created(actions)).toBeUndefined();
  });

  it('snapshot ready: the target is restored from it', () => {
    const pvc = created(decide({ snapshot: ready }));
    expect(pvc?.spec?.dataSourceRef).toEqual({
      apiGroup: 'snapshot.storage.k8s.io',
      kind: 'VolumeSnapshot',
      name: 'tmp-snapshot-dv-uid',
    });
    expect(pvc?.metadata?.annotations?.[S.TempSnapshot]).toBe('tmp-snapshot-dv-uid');
  });

  it.each([
    {
      what: 'no snapshot class, nothing configured: copy without a warning',
      over: { snapshotClasses: [] },
      fallback: 'No compatible volumesnapshotclass found',
      event: undefined,
    },
    {
      what: 'configured csi-clone into another provisioner: copy with CDI warning',
      over: {
        config: { ...configWith(), cloneProfiles: { other: { cloneStrategy: 'csi-clone' } } },
        dv: dv({ volumeMode: 'Block', storageClassName: 'other' }),
      },
      fallback: 'Provisioners are incompatible',
      event: 'IncompatibleProvisioners',
    },
    {
      what: 'override csi-clone, modes differ: copy with CDI warning',
      over: { config: configWith(undefined, 'csi-clone'), dv: dv({ volumeMode: 'Filesystem' }) },
      fallback: 'The volume modes of source and target are incompatible',
      event: 'IncompatibleVolumeModes',
    },
  ])('$what', ({ over, fallback, event }) => {
    const actions = decide(over);
    const pvc = created(actions);
    expect(pvc?.metadata?.annotations?.[Annotations.CloneRequest]).toBe('ns/golden');
    expect(pvc?.metadata?.annotations?.[S.FallbackReason]).toBe(fallback);
    const warning = actions.find((a) => a.kind === 'event' && a.type === 'Warning');
    expect(warning).toEqual(
      event === undefined
        ? undefined
        : expect.objectContaining({ reason: event, message: fallback }),
    );
  });
});

describe('decideDataVolume: snapshot sources', () => {
  const fromSnap = (over: Partial<DataVolumeInput>): Action[] =>
    decide({
      dv: {
        ...dv({ volumeMode: 'Block', storageClassName: 'other' }),
        spec: {
          source: { snapshot: { namespace: 'ns', name: 'snap' } },
          storage: { volumeMode: 'Block', storageClassName: 'other' },
        },
      },
      cloneSource: { kind: 'snapshot', ref: { namespace: 'ns', name: 'snap' } },
      snapshot: ready,
      ...over,
    });
  const restored: V1PersistentVolumeClaim = {
    metadata: { name: 'tmp-source-pvc-dv-uid', namespace: 'ns' },
    spec: {
      volumeMode: 'Block',
      storageClassName: 'standard',
      resources: { requests: { storage: '100Mi' } },
    },
    status: { phase: 'Bound', capacity: { storage: '100Mi' } },
  };

  it('another driver: the snapshot is restored into a claim of its driver first', () => {
    const actions = fromSnap({});
    const pvc = created(actions);
    expect(pvc?.metadata?.name).toBe('tmp-source-pvc-dv-uid');
    expect(pvc?.spec?.storageClassName).toBe('standard');
    expect(pvc?.spec?.dataSourceRef).toMatchObject({ kind: 'VolumeSnapshot', name: 'snap' });
    expect(phaseOf(actions)).toBe('CloneFromSnapshotSourceInProgress');
  });

  it('the restored claim bound: a host-assisted copy of it, with CDI warning', () => {
    const actions = fromSnap({ tempClaim: restored });
    const pvc = created(actions);
    expect(pvc?.metadata?.name).toBe('disk');
    expect(pvc?.metadata?.annotations?.[Annotations.CloneRequest]).toBe('ns/tmp-source-pvc-dv-uid');
    expect(actions).toContainEqual(
      expect.objectContaining({ kind: 'event', type: 'Warning', reason: 'NoProvisionerMatch' }),
    );
  });

  it('the copy done: the restored claim is deleted', () => {
    const done = target(
      {
        [Annotations.CloneRequest]: 'ns/tmp-source-pvc-dv-uid',
        [Annotations.PodPhase]: 'Succeeded',
      },
      'Bound',
      '100Mi',
      '100Mi',
    );
    done.metadata = {
      ...done.metadata,
      ownerReferences: [
        { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', name: 'disk', uid: 'dv-uid' },
      ],
    };
    const actions = fromSnap({ pvc: done, tempClaim: restored });
    expect(actions).toContainEqual({
      kind: 'deletePvc',
      namespace: 'ns',
      name: 'tmp-source-pvc-dv-uid',
    });
  });

  it('same driver: restored straight into the target', () => {
    const actions = decide({
      dv: {
        ...dv(),
        spec: { source: { snapshot: { name: 'snap' } }, storage: { volumeMode: 'Block' } },
      },
      cloneSource: { kind: 'snapshot', ref: { namespace: 'ns', name: 'snap' } },
      snapshot: ready,
    });
    expect(created(actions)?.spec?.dataSourceRef).toMatchObject({
      kind: 'VolumeSnapshot',
      name: 'snap',
    });
  });
});

function target(
  annotations: Record<string, string>,
  phase: string,
  request: string,
  capacity?: string,
): V1PersistentVolumeClaim {
  return {
    metadata: { name: 'disk', namespace: 'ns', annotations },
    spec: { resources: { requests: { storage: request } } },
    status: { phase, ...(capacity === undefined ? {} : { capacity: { storage: capacity } }) },
  };
}

describe('smart targets', () => {
  const csi = { [S.CloneType]: 'csi-clone', [S.ClonePhase]: 'CSIClone', [S.DesiredStorage]: '2Gi' };
  const snap = {
    [S.CloneType]: 'snapshot',
    [S.ClonePhase]: 'SnapshotClone',
    [S.DesiredStorage]: '1Gi',
    [S.TempSnapshot]: 'tmp-snapshot-x',
  };
  it.each([
    {
      what: 'csi-clone pending',
      pvc: target(csi, 'Pending', '1Gi'),
      phase: 'CSICloneInProgress',
      steps: [],
    },
    {
      what: 'csi-clone bound, smaller than asked: request raised',
      pvc: target(csi, 'Bound', '1Gi', '1Gi'),
      phase: 'ExpansionInProgress',
      steps: ['resizePvc 2Gi'],
    },
    {
      what: 'csi-clone raised, capacity not yet',
      pvc: target(csi, 'Bound', '2Gi', '1Gi'),
      phase: 'ExpansionInProgress',
      steps: [],
    },
    {
      what: 'csi-clone grown: done',
      pvc: target(csi, 'Bound', '2Gi', '2Gi'),
      phase: 'CSICloneInProgress',
      steps: ['patchPvc'],
    },
    {
      what: 'snapshot restored at its size: temp snapshot deleted, done',
      pvc: target(snap, 'Bound', '1Gi', '1Gi'),
      phase: 'CloneFromSnapshotSourceInProgress',
      steps: ['deleteVolumeSnapshot tmp-snapshot-x', 'patchPvc'],
    },
    {
      what: 'finished',
      pvc: target({ ...csi, [S.ClonePhase]: 'Succeeded' }, 'Bound', '2Gi', '2Gi'),
      phase: undefined,
      steps: [],
    },
    {
      what: 'not a smart target',
      pvc: target({}, 'Bound', '1Gi', '1Gi'),
      phase: undefined,
      steps: [],
    },
  ])('$what', ({ pvc, phase, steps }) => {
    expect(smartTargetPhase(pvc)).toBe(phase);
    expect(
      smartTargetSteps(pvc).map((a) =>
        a.kind === 'resizePvc'
          ? `resizePvc ${a.storage}`
          : a.kind === 'deleteVolumeSnapshot'
            ? `deleteVolumeSnapshot ${a.name}`
            : a.kind,
      ),
    ).toEqual(steps);
  });
});
