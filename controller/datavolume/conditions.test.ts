// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import type { DataVolumeCondition } from '../../common/api/datavolume.js';
import type { DataVolumePhase } from '../../common/api/phases.js';
import { desiredConditions, mergeConditions } from './conditions.js';

function claim(phase: string, annotations: Record<string, string> = {}): V1PersistentVolumeClaim {
  return { metadata: { name: 'disk', annotations }, status: { phase } };
}

const running = (state: string, reason: string, message: string): Record<string, string> => ({
  [Annotations.RunningCondition]: state,
  [Annotations.RunningConditionReason]: reason,
  [Annotations.RunningConditionMessage]: message,
});

describe('desiredConditions', () => {
  it.each<{
    what: string;
    phase: DataVolumePhase;
    pvc: V1PersistentVolumeClaim | undefined;
    invalid?: string;
    uploadRefusal?: string;
    want: string[];
  }>([
    {
      what: 'no claim',
      phase: 'Pending',
      pvc: undefined,
      want: ['Ready False ', 'Bound False NotFound No PVC found', 'Running False '],
    },
    {
      what: 'claim pending',
      phase: 'Pending',
      pvc: claim('Pending'),
      want: ['Ready False ', 'Bound False Pending PVC disk Pending', 'Running False '],
    },
    {
      what: 'importing',
      phase: 'ImportInProgress',
      pvc: claim('Bound', running('true', 'Pod is running', '')),
      want: [
        'Ready False TransferRunning',
        'Bound True Bound PVC disk Bound',
        'Running True Pod is running',
      ],
    },
    {
      what: 'retrying after a 404',
      phase: 'ImportInProgress',
      pvc: claim('Bound', running('false', 'Error', 'got 404')),
      want: ['Ready False ', 'Bound True Bound PVC disk Bound', 'Running False Error got 404'],
    },
    {
      what: 'succeeded',
      phase: 'Succeeded',
      pvc: claim('Bound', running('false', 'Completed', 'Import Complete')),
      want: [
        'Ready True ',
        'Bound True Bound PVC disk Bound',
        'Running False Completed Import Complete',
      ],
    },
    {
      what: 'claim lost',
      phase: 'Failed',
      pvc: claim('Lost'),
      want: ['Ready False ', 'Bound False ClaimLost Claim Lost', 'Running False '],
    },
    {
      what: 'unknown',
      phase: 'Unknown',
      pvc: claim('Weird'),
      want: ['Ready Unknown ', 'Bound False Pending PVC disk Pending', 'Running False '],
    },
    {
      what: 'invalid spec',
      phase: 'Failed',
      pvc: undefined,
      invalid: 'Missing Data volume source',
      want: [
        'Ready False InvalidSpec Missing Data volume source',
        'Bound False NotFound No PVC found',
        'Running False InvalidSpec Missing Data volume source',
      ],
    },
    {
      what: 'upload refused by the upload server: the reason in Running until the next upload',
      phase: 'UploadReady',
      pvc: claim('Bound', running('true', 'Pod is running', '')),
      uploadRefusal:
        'Saving stream failed: effective image size is larger than the reported available storage: image size 48Mi exceeds available space 8Mi',
      want: [
        'Ready False ',
        'Bound True Bound PVC disk Bound',
        'Running False Error Saving stream failed: effective image size is larger than the reported available storage: image size 48Mi exceeds available space 8Mi',
      ],
    },
    {
      what: 'an upload refusal does not outlive success',
      phase: 'Succeeded',
      pvc: claim('Bound', running('false', 'Completed', 'Upload Complete')),
      uploadRefusal: 'Saving stream failed: old',
      want: [
        'Ready True ',
        'Bound True Bound PVC disk Bound',
        'Running False Completed Upload Complete',
      ],
    },
  ])('$what', ({ phase, pvc, invalid, uploadRefusal, want }) => {
    const got = desiredConditions({
      phase,
      pvc,
      ...(invalid === undefined ? {} : { invalid }),
      ...(uploadRefusal === undefined ? {} : { uploadRefusal }),
    });
    expect(
      got.map((c) => `${c.type} ${c.status} ${c.reason}${c.message === '' ? '' : ` ${c.message}`}`),
    ).toEqual(want);
  });
});

describe('mergeConditions', () => {
  const t0 = '2026-01-01T00:00:00Z';
  const t1 = '2026-01-01T00:01:00Z';
  const old: DataVolumeCondition[] = [
    {
      type: 'Ready',
      status: 'False',
      reason: '',
      message: '',
      lastTransitionTime: t0,
      lastHeartbeatTime: t0,
    },
    { type: 'Custom', status: 'True', lastTransitionTime: t0 },
  ];

  it.each([
    {
      what: 'unchanged keeps both times',
      status: 'False' as const,
      message: '',
      transition: t0,
      heartbeat: t0,
    },
    {
      what: 'new message moves only the heartbeat',
      status: 'False' as const,
      message: 'x',
      transition: t0,
      heartbeat: t1,
    },
    {
      what: 'new status moves both',
      status: 'True' as const,
      message: '',
      transition: t1,
      heartbeat: t1,
    },
  ])('$what', ({ status, message, transition, heartbeat }) => {
    const merged = mergeConditions(old, [{ type: 'Ready', status, reason: '', message }], t1);
    const ready = merged.find((c) => c.type === 'Ready');
    expect(ready?.lastTransitionTime).toBe(transition);
    expect(ready?.lastHeartbeatTime).toBe(heartbeat);
    expect(merged.find((c) => c.type === 'Custom')).toEqual(old[1]);
  });

  it('stamps new conditions with now and orders Ready, Bound, Running', () => {
    const merged = mergeConditions(
      undefined,
      [
        { type: 'Running', status: 'False', reason: '', message: '' },
        { type: 'Bound', status: 'True', reason: 'Bound', message: '' },
        { type: 'Ready', status: 'False', reason: '', message: '' },
      ],
      t1,
    );
    expect(merged.map((c) => c.type)).toEqual(['Ready', 'Bound', 'Running']);
    expect(merged.every((c) => c.lastTransitionTime === t1 && c.lastHeartbeatTime === t1)).toBe(
      true,
    );
  });
});
