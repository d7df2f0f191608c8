// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import type { DataVolume, DataVolumeStatus } from '../../common/api/datavolume.js';
import type { Action, UpdateDvStatusAction } from '../actions.js';
import { effectiveConfig } from '../config.js';
import { decideDataVolume, NO_STORAGE_CLASS_MESSAGE } from './decide.js';

const config = effectiveConfig(undefined, [
  { name: 'standard', isDefault: true, volumeBindingMode: 'Immediate' },
]);
const NOW = '2026-11-22T00:00:00Z';

function dv(status?: DataVolumeStatus, spec: DataVolume['spec'] = undefined): DataVolume {
  return {
    metadata: { name: 'disk', namespace: 'ns', uid: 'dv-uid' },
    spec: spec ?? {
      source: { http: { url: 'http://h/x.qcow2' } },
      storage: { resources: { requests: { storage: '1Gi' } } },
    },
    ...(status === undefined ? {} : { status }),
  };
}

function claim(
  annotations: Record<string, string>,
  phase = 'Bound',
  owner = 'dv-uid',
): V1PersistentVolumeClaim {
  return {
    metadata: {
      name: 'disk',
      namespace: 'ns',
      annotations,
      ownerReferences: [
        { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', name: 'disk', uid: owner },
      ],
    },
    status: { phase },
  };
}

function statusOf(actions: readonly Action[]): DataVolumeStatus | undefined {
  return actions.find((a): a is UpdateDvStatusAction => a.kind === 'updateDvStatus')?.status;
}

function kinds(actions: readonly Action[]): string[] {
  return actions.map((a) => (a.kind === 'event' ? `event ${a.type} ${a.reason}` : a.kind));
}

const RUNNING = {
  [Annotations.PodPhase]: 'Running',
  [Annotations.RunningCondition]: 'true',
  [Annotations.RunningConditionReason]: 'Pod is running',
  [Annotations.PodRestarts]: '0',
};

const UPLOAD = { [Annotations.UploadTarget]: '' };
const UPLOAD_SPEC: DataVolume['spec'] = {
  source: { upload: {} },
  storage: { resources: { requests: { storage: '1Gi' } } },
};

describe('decideDataVolume', () => {
  it.each<{
    what: string;
    dv: DataVolume;
    pvc?: V1PersistentVolumeClaim;
    progress?: string;
    uploadRefusal?: string;
    wffc?: boolean;
    kinds: string[];
    phase?: string;
    progressText?: string;
    restarts?: number;
  }>([
    {
      what: 'new DataVolume: creates the claim, and leaves the status to the claim add event',
      dv: dv(),
      kinds: ['createPvc'],
    },
    {
      what: 'claim just created, not bound: Pending, N/A',
      dv: dv(),
      pvc: claim({}, 'Pending'),
      kinds: ['updateDvStatus', 'event Normal Pending'],
      phase: 'Pending',
      progressText: 'N/A',
    },
    {
      what: 'WFFC claim waits for a consumer',
      dv: dv({ phase: 'Pending' }),
      pvc: claim({}, 'Pending'),
      wffc: true,
      kinds: ['updateDvStatus', 'event Normal WaitForFirstConsumer'],
      phase: 'WaitForFirstConsumer',
    },
    {
      what: 'import in progress with progress scraped',
      dv: dv({ phase: 'ImportScheduled', progress: 'N/A' }),
      pvc: claim(RUNNING),
      progress: '45.67%',
      kinds: ['updateDvStatus', 'event Normal ImportInProgress', 'requeue'],
      phase: 'ImportInProgress',
      progressText: '45.67%',
    },
    {
      what: 'retrying: restart count and a Warning with the cause',
      dv: dv({ phase: 'ImportInProgress', progress: '10.00%' }),
      pvc: claim({
        [Annotations.PodPhase]: 'Running',
        [Annotations.PodRestarts]: '3',
        [Annotations.RunningCondition]: 'false',
        [Annotations.RunningConditionReason]: 'Error',
        [Annotations.RunningConditionMessage]: 'got 404',
      }),
      kinds: ['updateDvStatus', 'event Warning Error', 'requeue'],
      phase: 'ImportInProgress',
      progressText: '10.00%',
      restarts: 3,
    },
    {
      what: 'succeeded',
      dv: dv({ phase: 'ImportInProgress', progress: '99.00%' }),
      pvc: claim({
        [Annotations.PodPhase]: 'Succeeded',
        [Annotations.RunningCondition]: 'false',
        [Annotations.RunningConditionReason]: 'Completed',
        [Annotations.RunningConditionMessage]: 'Import Complete',
      }),
      kinds: ['updateDvStatus', 'event Normal ImportSucceeded'],
      phase: 'Succeeded',
      progressText: '100.0%',
    },
    {
      what: 'upload claim with a pod not ready yet: UploadScheduled, N/A',
      dv: dv({ phase: 'PVCBound', progress: 'N/A' }, UPLOAD_SPEC),
      pvc: claim({ ...UPLOAD, [Annotations.PodPhase]: 'Pending', [Annotations.PodReady]: 'false' }),
      kinds: ['updateDvStatus', 'event Normal UploadScheduled'],
      phase: 'UploadScheduled',
      progressText: 'N/A',
    },
    {
      what: 'upload server ready, bytes arriving: UploadReady with the scraped progress',
      dv: dv({ phase: 'UploadScheduled', progress: 'N/A' }, UPLOAD_SPEC),
      pvc: claim({ ...UPLOAD, ...RUNNING, [Annotations.PodReady]: 'true' }),
      progress: '12.50%',
      kinds: ['updateDvStatus', 'event Normal UploadReady', 'requeue'],
      phase: 'UploadReady',
      progressText: '12.50%',
    },
    {
      what: 'upload refused by the server (too large): the reason as a Warning event and in Running',
      dv: dv({ phase: 'UploadReady', progress: '12.50%' }, UPLOAD_SPEC),
      pvc: claim({ ...UPLOAD, ...RUNNING, [Annotations.PodReady]: 'true' }),
      uploadRefusal:
        'Saving stream failed: effective image size is larger than the reported available storage: too big',
      kinds: ['updateDvStatus', 'event Warning Error', 'requeue'],
      phase: 'UploadReady',
    },
    {
      what: "upload succeeded: 100.0% and CDI's upload event",
      dv: dv({ phase: 'UploadReady', progress: '97.00%' }, UPLOAD_SPEC),
      pvc: claim({
        ...UPLOAD,
        [Annotations.PodPhase]: 'Succeeded',
        [Annotations.RunningCondition]: 'false',
        [Annotations.RunningConditionReason]: 'Completed',
        [Annotations.RunningConditionMessage]: 'Upload Complete',
      }),
      kinds: ['updateDvStatus', 'event Normal UploadSucceeded'],
      phase: 'Succeeded',
      progressText: '100.0%',
    },
    {
      what: 'checksum mismatch: Failed',
      dv: dv({ phase: 'ImportInProgress' }),
      pvc: claim({
        [Annotations.PodPhase]: 'Failed',
        [Annotations.FatalError]: 'true',
        [Annotations.RunningCondition]: 'false',
        [Annotations.RunningConditionReason]: 'ChecksumError',
        [Annotations.RunningConditionMessage]: 'checksum mismatch',
      }),
      kinds: ['updateDvStatus', 'event Warning ImportFailed', 'event Warning ChecksumError'],
      phase: 'Failed',
    },
    {
      what: 'invalid spec: Failed with a Warning, no claim',
      dv: dv(undefined, { storage: { resources: { requests: { storage: '1Gi' } } } }),
      kinds: ['updateDvStatus', 'event Warning ErrInvalidSpec'],
      phase: 'Failed',
    },
    {
      what: 'claim owned by someone else',
      dv: dv(),
      pvc: claim({}, 'Bound', 'other'),
      kinds: ['updateDvStatus', 'event Normal Pending', 'event Warning ErrResourceExists'],
      phase: 'Pending',
    },
    {
      what: 'being deleted: nothing',
      dv: {
        ...dv(),
        metadata: { name: 'disk', namespace: 'ns', uid: 'dv-uid', deletionTimestamp: NOW },
      },
      kinds: [],
    },
  ])('$what', (c) => {
    const { dv: d, pvc, progress, wffc, kinds: want, phase, progressText, restarts } = c;
    const actions = decideDataVolume({
      dv: d,
      pvc,
      config,
      waitForFirstConsumer: wffc ?? false,
      ...(progress === undefined ? {} : { progress }),
      ...(c.uploadRefusal === undefined ? {} : { uploadRefusal: c.uploadRefusal }),
      now: NOW,
    });
    expect(kinds(actions)).toEqual(want);
    const status = statusOf(actions);
    if (phase !== undefined) expect(status?.phase).toBe(phase);
    if (progressText !== undefined) expect(status?.progress).toBe(progressText);
    if (restarts !== undefined) expect(status?.restartCount).toBe(restarts);
  });

  it('writes nothing when the status is already current (idempotent)', () => {
    const first = decideDataVolume({
      dv: dv(),
      pvc: claim(RUNNING),
      config,
      waitForFirstConsumer: false,
      now: NOW,
    });
    const status = statusOf(first);
    expect(status?.claimName).toBe('disk');
    const again = decideDataVolume({
      dv: dv(status),
      pvc: claim(RUNNING),
      config,
      waitForFirstConsumer: false,
      now: '2026-11-22T00:05:00Z',
    });
    expect(kinds(again)).toEqual(['requeue']);
  });

  it('does not repeat the invalid-spec Warning once reported', () => {
    const bad = dv(undefined, { source: { http: { url: 'http://h/x' } } });
    const first = decideDataVolume({
      dv: bad,
      pvc: undefined,
      config,
      waitForFirstConsumer: false,
      now: NOW,
    });
    const again = decideDataVolume({
      dv: { ...bad, status: statusOf(first) ?? {} },
      pvc: undefined,
      config,
      waitForFirstConsumer: false,
      now: NOW,
    });
    expect(kinds(again)).toEqual([]);
    expect(statusOf(first)?.conditions?.find((c) => c.type === 'Running')?.message).toBe(
      'Missing Data volume PVC',
    );
  });
});

describe('decideDataVolume without any storage class (CDI ErrClaimNotValid)', () => {
  const noClasses = effectiveConfig(undefined, [
    { name: 'other', isDefault: false, volumeBindingMode: 'Immediate' },
  ]);
  const input = (spec: DataVolume['spec'], status?: DataVolumeStatus) => ({
    dv: dv(status, spec),
    pvc: undefined,
    config: noClasses,
    waitForFirstConsumer: false,
    now: NOW,
  });
  const source = { http: { url: 'http://h/x.qcow2' } };
  const size = { resources: { requests: { storage: '1Gi' } } };

  it.each<{ what: string; spec: DataVolume['spec']; created: boolean }>([
    {
      what: 'storage, no accessModes, no class: refused',
      spec: { source, storage: size },
      created: false,
    },
    {
      what: 'storage with accessModes: created',
      spec: { source, storage: { ...size, accessModes: ['ReadWriteOnce'] } },
      created: true,
    },
    {
      what: 'storage naming a class: created',
      spec: { source, storage: { ...size, storageClassName: 'other' } },
      created: true,
    },
    {
      what: 'pvc API: created',
      spec: { source, pvc: { ...size, accessModes: ['ReadWriteOnce'] } },
      created: true,
    },
  ])('$what', ({ spec, created }) => {
    const actions = decideDataVolume(input(spec));
    expect(actions.some((a) => a.kind === 'createPvc')).toBe(created);
    if (created) return;
    const status = statusOf(actions);
    expect(status?.phase).toBe('Pending');
    expect(status?.conditions?.find((c) => c.type === 'Running')).toMatchObject({
      status: 'False',
      reason: 'ErrClaimNotValid',
      message: NO_STORAGE_CLASS_MESSAGE,
    });
    expect(kinds(actions)).toContain('event Warning ErrClaimNotValid');
    // Reported once: the next reconcile, with that status, records no new Warning.
    const again = decideDataVolume(input(spec, status));
    expect(kinds(again)).not.toContain('event Warning ErrClaimNotValid');
  });
});
