// SPDX-License-Identifier: Apache-2.0
import type {
  V1ContainerStatus,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodCondition,
} from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import { summarize, testConfig as config, testSettings as settings } from './testing.js';
import { decideUpload } from './upload-reconcile.js';

const UPLOAD = { [Annotations.UploadTarget]: '' };

function claim(annotations: Record<string, string>, phase = 'Bound'): V1PersistentVolumeClaim {
  return {
    metadata: { name: 'disk', namespace: 'ns', uid: 'pvc-uid', annotations },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    status: { phase },
  };
}

function pod(
  phase: string,
  cs?: Partial<V1ContainerStatus>,
  options: { ready?: boolean; owner?: string; deleting?: boolean } = {},
): V1Pod {
  const conditions: V1PodCondition[] = [
    { type: 'Ready', status: options.ready === true ? 'True' : 'False' },
  ];
  return {
    metadata: {
      name: 'cdi-upload-disk',
      namespace: 'ns',
      uid: 'pod-uid',
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          name: 'disk',
          uid: options.owner ?? 'pvc-uid',
        },
      ],
      ...(options.deleting === true ? { deletionTimestamp: new Date() } : {}),
    },
    status: {
      phase,
      conditions,
      ...(cs === undefined
        ? {}
        : {
            containerStatuses: [
              {
                name: 'cdi-upload-server',
                image: 'img',
                imageID: '',
                ready: options.ready === true,
                restartCount: 0,
                ...cs,
              },
            ],
          }),
    },
  };
}

const RUNNING = { state: { running: { startedAt: new Date() } } };
const DONE_MSG =
  '{"scratchSpaceRequired":false,"preallocationApplied":false,"message":"Upload Complete"}';
const TOO_BIG =
  'Unable to process data: effective image size is larger than the reported available storage';
const CLEANUP = [
  'deletePod cdi-upload-disk',
  'deleteService cdi-upload-disk',
  'deleteSecret cdi-upload-disk',
];

describe('decideUpload', () => {
  it.each<{
    what: string;
    pvc: V1PersistentVolumeClaim;
    pod?: V1Pod;
    wffc?: boolean;
    want: string[];
  }>([
    { what: 'ignores claims that are not upload targets', pvc: claim({}), want: [] },
    { what: 'waits for an unbound claim', pvc: claim(UPLOAD, 'Pending'), want: [] },
    {
      what: 'WaitForFirstConsumer with immediate binding: the upload pod is the first consumer',
      pvc: claim({ ...UPLOAD, [Annotations.BindImmediate]: 'true' }, 'Pending'),
      wffc: true,
      want: [
        'patch uploadPodName=cdi-upload-disk,pod.ready=false,pod.restarts=0',
        'ensureUploadSecret disk',
        'createService cdi-upload-disk',
        'createUploadPod cdi-upload-disk',
      ],
    },
    {
      what: 'bound claim: Secret, Service, then pod',
      pvc: claim(UPLOAD),
      want: [
        'patch uploadPodName=cdi-upload-disk,pod.ready=false,pod.restarts=0',
        'ensureUploadSecret disk',
        'createService cdi-upload-disk',
        'createUploadPod cdi-upload-disk',
      ],
    },
    {
      what: 'does not start again after success',
      pvc: claim({ ...UPLOAD, [Annotations.PodPhase]: 'Succeeded' }),
      want: [],
    },
    {
      what: 'pending pod: phase copied, not ready',
      pvc: claim({
        ...UPLOAD,
        [Annotations.UploadPodName]: 'cdi-upload-disk',
        [Annotations.PodReady]: 'false',
        [Annotations.PodRestarts]: '0',
      }),
      pod: pod('Pending', { state: { waiting: { reason: 'ContainerCreating' } } }),
      want: [
        'patch condition.running=false,condition.running.reason=ContainerCreating,condition.running.message=,pod.phase=Pending',
      ],
    },
    {
      what: 'running and ready: ready annotation for the proxy',
      pvc: claim({ ...UPLOAD, [Annotations.PodReady]: 'false', [Annotations.PodRestarts]: '0' }),
      pod: pod('Running', RUNNING, { ready: true }),
      want: [
        'patch condition.running=true,condition.running.reason=Pod is running,condition.running.message=,pod.phase=Running,pod.ready=true',
      ],
    },
    {
      what: 'running but not ready yet',
      pvc: claim({ ...UPLOAD, [Annotations.PodReady]: 'false', [Annotations.PodRestarts]: '0' }),
      pod: pod('Running', RUNNING, { ready: false }),
      want: [
        'patch condition.running=true,condition.running.reason=Pod is running,condition.running.message=,pod.phase=Running',
      ],
    },
    {
      what: 'success: Succeeded, event, and pod, Service and Secret deleted',
      pvc: claim({ ...UPLOAD, [Annotations.PodReady]: 'true', [Annotations.PodRestarts]: '0' }),
      pod: pod('Succeeded', {
        state: { terminated: { exitCode: 0, message: DONE_MSG, reason: 'Completed' } },
      }),
      want: [
        'patch condition.running=false,condition.running.reason=Completed,condition.running.message=Upload Complete,pod.phase=Succeeded,pod.ready=false',
        'event Normal UploadSucceeded: Upload Successful',
        ...CLEANUP,
      ],
    },
    {
      what: 'success with retainAfterCompletion keeps the pod',
      pvc: claim({
        ...UPLOAD,
        [Annotations.RetainAfterCompletion]: 'true',
        [Annotations.PodRestarts]: '0',
      }),
      pod: pod('Succeeded', { state: { terminated: { exitCode: 0, message: DONE_MSG } } }),
      want: [
        'patch condition.running=false,condition.running.reason=Completed,condition.running.message=Upload Complete,pod.phase=Succeeded,pod.ready=false',
        'event Normal UploadSucceeded: Upload Successful',
        'deleteService cdi-upload-disk',
        'deleteSecret cdi-upload-disk',
      ],
    },
    {
      what: 'a failed processing restarts: never terminal, even for an image too large',
      pvc: claim({ ...UPLOAD, [Annotations.PodRestarts]: '0', [Annotations.PodReady]: 'true' }),
      pod: pod('Running', {
        restartCount: 1,
        state: { waiting: { reason: 'CrashLoopBackOff' } },
        lastState: { terminated: { exitCode: 1, message: TOO_BIG, reason: 'Error' } },
      }),
      want: [
        // CDI's simplified text for capacity errors, as for imports.
        `patch pod.restarts=1,condition.running=false,condition.running.reason=Error,condition.running.message=DataVolume too small to contain image,pod.phase=Running,pod.ready=false`,
        `event Warning ErrUploadFailed: DataVolume too small to contain image`,
      ],
    },
    {
      what: 'a Failed pod is replaced',
      pvc: claim({ ...UPLOAD, [Annotations.PodRestarts]: '2' }),
      pod: pod('Failed', { state: { terminated: { exitCode: 2, message: 'boom' } } }),
      want: [
        'patch condition.running=false,condition.running.reason=Error,condition.running.message=boom,pod.phase=Failed,pod.ready=false',
        'event Warning UploadFailed: boom',
        'deletePod cdi-upload-disk',
      ],
    },
    {
      what: 'annotation removed: pod, Service and Secret go',
      pvc: claim({ [Annotations.PodRestarts]: '0' }),
      pod: pod('Running', RUNNING, { ready: true }),
      want: CLEANUP,
    },
    {
      what: 'claim being deleted: pod, Service and Secret go',
      pvc: {
        ...claim(UPLOAD),
        metadata: { ...claim(UPLOAD).metadata, deletionTimestamp: new Date() },
      },
      pod: pod('Running', RUNNING, { ready: true }),
      want: CLEANUP,
    },
    {
      what: "a pod of the same name that the claim does not own is not the claim's",
      pvc: claim({}),
      pod: pod('Running', RUNNING, { owner: 'someone-else' }),
      want: [],
    },
    {
      what: 'a pod being deleted is left alone',
      pvc: claim({ ...UPLOAD, [Annotations.PodRestarts]: '0' }),
      pod: pod('Running', RUNNING, { deleting: true }),
      want: [],
    },
  ])('$what', ({ pvc, pod: p, wffc, want }) => {
    const actions = decideUpload({
      pvc,
      pod: p,
      config,
      settings,
      waitForFirstConsumer: wffc ?? false,
    });
    expect(summarize(actions)).toEqual(want);
  });

  it('is idempotent: a claim already showing the pod state gets no patch', () => {
    const pvc = claim({
      ...UPLOAD,
      [Annotations.PodRestarts]: '0',
      [Annotations.PodPhase]: 'Running',
      [Annotations.PodReady]: 'true',
      [Annotations.RunningCondition]: 'true',
      [Annotations.RunningConditionReason]: 'Pod is running',
      [Annotations.RunningConditionMessage]: '',
      [Annotations.PodSchedulable]: '',
    });
    delete pvc.metadata?.annotations?.[Annotations.PodSchedulable];
    const actions = decideUpload({
      pvc,
      pod: pod('Running', RUNNING, { ready: true }),
      config,
      settings,
      waitForFirstConsumer: false,
    });
    expect(actions).toEqual([]);
  });
});
