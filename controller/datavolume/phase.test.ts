// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import { derivePhase } from './phase.js';

function claim(
  phase: string | undefined,
  annotations: Record<string, string> = {},
): V1PersistentVolumeClaim {
  return {
    metadata: { name: 'd', annotations },
    ...(phase === undefined ? {} : { status: { phase } }),
  };
}

describe('derivePhase', () => {
  it.each<{ what: string; pvc: V1PersistentVolumeClaim | undefined; wffc?: boolean; want: string }>(
    [
      { what: 'no claim', pvc: undefined, want: 'Pending' },
      { what: 'claim pending', pvc: claim('Pending'), want: 'Pending' },
      { what: 'claim without status', pvc: claim(undefined), want: 'Pending' },
      {
        what: 'WFFC claim pending',
        pvc: claim('Pending'),
        wffc: true,
        want: 'WaitForFirstConsumer',
      },
      {
        what: 'WFFC with immediate binding',
        pvc: claim('Pending', { [Annotations.BindImmediate]: 'true' }),
        wffc: true,
        want: 'Pending',
      },
      {
        what: 'WFFC pending with a pod running',
        pvc: claim('Pending', { [Annotations.PodPhase]: 'Running' }),
        wffc: true,
        want: 'ImportInProgress',
      },
      { what: 'bound, nothing yet', pvc: claim('Bound'), want: 'PVCBound' },
      {
        what: 'bound, pod named',
        pvc: claim('Bound', { [Annotations.ImportPodName]: 'importer-d' }),
        want: 'ImportScheduled',
      },
      {
        what: 'pod pending',
        pvc: claim('Bound', { [Annotations.PodPhase]: 'Pending' }),
        want: 'ImportScheduled',
      },
      {
        what: 'pod running',
        pvc: claim('Bound', { [Annotations.PodPhase]: 'Running' }),
        want: 'ImportInProgress',
      },
      {
        what: 'pod failed, retried',
        pvc: claim('Bound', { [Annotations.PodPhase]: 'Failed' }),
        want: 'ImportInProgress',
      },
      {
        what: 'fatal error',
        pvc: claim('Bound', { [Annotations.PodPhase]: 'Failed', [Annotations.FatalError]: 'true' }),
        want: 'Failed',
      },
      {
        what: 'succeeded',
        pvc: claim('Bound', { [Annotations.PodPhase]: 'Succeeded' }),
        want: 'Succeeded',
      },
      { what: 'claim lost', pvc: claim('Lost'), want: 'Failed' },
      { what: 'odd claim phase', pvc: claim('Weird'), want: 'Unknown' },
      {
        what: 'upload pod pending',
        pvc: claim('Bound', { [Annotations.UploadTarget]: '', [Annotations.PodPhase]: 'Pending' }),
        want: 'UploadScheduled',
      },
      {
        what: 'upload pod ready',
        pvc: claim('Bound', {
          [Annotations.UploadTarget]: '',
          [Annotations.PodPhase]: 'Running',
          [Annotations.PodReady]: 'true',
        }),
        want: 'UploadReady',
      },
      {
        what: 'claim being deleted',
        pvc: { metadata: { name: 'd', deletionTimestamp: new Date() }, status: { phase: 'Bound' } },
        want: 'Pending',
      },
    ],
  )('$what → $want', ({ pvc, wffc, want }) => {
    expect(derivePhase({ pvc, waitForFirstConsumer: wffc ?? false })).toBe(want);
  });
});
