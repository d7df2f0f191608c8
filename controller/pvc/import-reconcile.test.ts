// SPDX-License-Identifier: Apache-2.0
import type { V1ContainerStatus, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import { summarize, testConfig as config, testSettings as settings } from './testing.js';
import { decideImport } from './import-reconcile.js';

const ENDPOINT = { [Annotations.Endpoint]: 'http://h/x.qcow2' };

function claim(annotations: Record<string, string>, phase = 'Bound'): V1PersistentVolumeClaim {
  return {
    metadata: { name: 'disk', namespace: 'ns', uid: 'pvc-uid', annotations },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    status: { phase },
  };
}

function pod(phase: string, cs?: Partial<V1ContainerStatus>): V1Pod {
  return {
    metadata: { name: 'importer-disk', namespace: 'ns', uid: 'pod-uid' },
    status: {
      phase,
      podIP: '127.1.0.2',
      ...(cs === undefined
        ? {}
        : {
            containerStatuses: [
              { name: 'importer', image: 'img', imageID: '', ready: false, restartCount: 0, ...cs },
            ],
          }),
    },
  };
}

const FAIL_404 =
  'Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found';
const CHECKSUM =
  'Unable to process data: checksum validation failed: checksum mismatch: expected sha256:a, calculated sha256:b';
const OK_MSG =
  '{"scratchSpaceRequired":false,"preallocationApplied":true,"message":"Import Complete","labels":{"l":"v"}}';

describe('decideImport', () => {
  it.each<{
    what: string;
    pvc: V1PersistentVolumeClaim;
    pod?: V1Pod;
    wffc?: boolean;
    want: string[];
  }>([
    { what: 'ignores claims without import annotations', pvc: claim({}), want: [] },
    {
      what: 'bound claim without pod: names and creates the pod',
      pvc: claim(ENDPOINT),
      want: ['patch import.importPodName=importer-disk,pod.restarts=0', 'createPod importer-disk'],
    },
    {
      what: 'blank source (no endpoint) is an import too',
      pvc: claim({
        [Annotations.Source]: 'none',
        [Annotations.ImportPodName]: 'importer-disk',
        [Annotations.PodRestarts]: '0',
      }),
      want: ['createPod importer-disk'],
    },
    {
      what: 'requires scratch: the pod gets scratch',
      pvc: claim({
        ...ENDPOINT,
        [Annotations.ImportPodName]: 'importer-disk',
        [Annotations.PodRestarts]: '0',
        [Annotations.RequiresScratch]: 'true',
      }),
      want: ['createPod importer-disk scratch'],
    },
    { what: 'unbound claim waits (Immediate class)', pvc: claim(ENDPOINT, 'Pending'), want: [] },
    {
      what: 'unbound WFFC claim waits for a consumer',
      pvc: claim(ENDPOINT, 'Pending'),
      wffc: true,
      want: [],
    },
    {
      what: 'unbound WFFC claim with immediate binding gets the pod',
      pvc: claim({ ...ENDPOINT, [Annotations.BindImmediate]: 'true' }, 'Pending'),
      wffc: true,
      want: ['patch import.importPodName=importer-disk,pod.restarts=0', 'createPod importer-disk'],
    },
    {
      what: 'complete claim gets no new pod',
      pvc: claim({ ...ENDPOINT, [Annotations.PodPhase]: 'Succeeded' }),
      want: [],
    },
    {
      what: 'fatal claim gets no new pod',
      pvc: claim({ ...ENDPOINT, [Annotations.FatalError]: 'true' }),
      want: [],
    },
    {
      what: 'pending pod',
      pvc: claim({ ...ENDPOINT, [Annotations.PodRestarts]: '0' }),
      pod: pod('Pending', { state: { waiting: { reason: 'ContainerCreating' } } }),
      want: [
        'patch storage.condition.running=false,storage.condition.running.reason=ContainerCreating,storage.condition.running.message=,pod.phase=Pending'.replace(
          /storage\./g,
          '',
        ),
      ],
    },
    {
      what: 'running pod',
      pvc: claim({ ...ENDPOINT, [Annotations.PodRestarts]: '0' }),
      pod: pod('Running', { state: { running: {} } }),
      want: [
        'patch condition.running=true,condition.running.reason=Pod is running,condition.running.message=,pod.phase=Running',
      ],
    },
    {
      what: 'unchanged running pod: no patch',
      pvc: claim({
        ...ENDPOINT,
        [Annotations.PodRestarts]: '0',
        [Annotations.RunningCondition]: 'true',
        [Annotations.RunningConditionReason]: 'Pod is running',
        [Annotations.RunningConditionMessage]: '',
        [Annotations.PodPhase]: 'Running',
      }),
      pod: pod('Running', { state: { running: {} } }),
      want: [],
    },
    {
      what: '404, restarting: cause and restarts shown, pod kept',
      pvc: claim({
        ...ENDPOINT,
        [Annotations.PodRestarts]: '1',
        [Annotations.PodPhase]: 'Running',
      }),
      pod: pod('Running', {
        restartCount: 2,
        state: { waiting: { reason: 'CrashLoopBackOff' } },
        lastState: { terminated: { exitCode: 1, reason: 'Error', message: FAIL_404 } },
      }),
      want: [
        `patch pod.restarts=2,condition.running=false,condition.running.reason=Error,condition.running.message=${FAIL_404}`,
        `event Warning ErrImportFailed: ${FAIL_404}`,
      ],
    },
    {
      what: 'restarted after a 404 and running again: the cause stays in the running condition',
      pvc: claim({
        ...ENDPOINT,
        [Annotations.PodRestarts]: '1',
        [Annotations.RunningCondition]: 'false',
        [Annotations.RunningConditionReason]: 'Error',
        [Annotations.RunningConditionMessage]: FAIL_404,
        [Annotations.PodPhase]: 'Running',
      }),
      pod: pod('Running', {
        restartCount: 1,
        state: { running: {} },
        lastState: { terminated: { exitCode: 1, reason: 'Error', message: FAIL_404 } },
      }),
      // The message is not in the patch: it stays FAIL_404 (it used to be cleared).
      want: ['patch condition.running=true,condition.running.reason=Pod is running'],
    },
    {
      what: 'restarted and running, the claim not yet showing the cause: the cause is set',
      pvc: claim({
        ...ENDPOINT,
        [Annotations.PodRestarts]: '1',
        [Annotations.PodPhase]: 'Running',
      }),
      pod: pod('Running', {
        restartCount: 1,
        state: { running: {} },
        lastState: { terminated: { exitCode: 1, reason: 'Error', message: FAIL_404 } },
      }),
      want: [
        `patch condition.running=true,condition.running.reason=Pod is running,condition.running.message=${FAIL_404}`,
      ],
    },
    {
      what: 'just terminated with an error under OnFailure: not deleted',
      pvc: claim({
        ...ENDPOINT,
        [Annotations.PodRestarts]: '0',
        [Annotations.PodPhase]: 'Running',
      }),
      pod: pod('Running', {
        state: { terminated: { exitCode: 1, reason: 'Error', message: FAIL_404 } },
      }),
      want: [
        `patch condition.running=false,condition.running.reason=Error,condition.running.message=${FAIL_404}`,
      ],
    },
    {
      what: 'checksum mismatch: fatal, pod deleted',
      pvc: claim({
        ...ENDPOINT,
        [Annotations.PodRestarts]: '0',
        [Annotations.PodPhase]: 'Running',
      }),
      pod: pod('Running', {
        state: { terminated: { exitCode: 1, reason: 'Error', message: CHECKSUM } },
      }),
      want: [
        `patch condition.running=false,condition.running.reason=ChecksumError,condition.running.message=${CHECKSUM},pod.phase=Failed,import.fatalError=true`,
        `event Warning ErrImportFailed: ${CHECKSUM}`,
        'deletePod importer-disk',
      ],
    },
    {
      what: 'too large, seen in the last state after a restart: fatal',
      pvc: claim({
        ...ENDPOINT,
        [Annotations.PodRestarts]: '0',
        [Annotations.PodPhase]: 'Running',
      }),
      pod: pod('Running', {
        restartCount: 1,
        state: { running: {} },
        lastState: {
          terminated: {
            exitCode: 1,
            message: 'virtual image size 5 is larger than the reported available storage 1',
          },
        },
      }),
      want: [
        'patch pod.restarts=1,condition.running=false,condition.running.reason=Error,condition.running.message=DataVolume too small to contain image,pod.phase=Failed,import.fatalError=true',
        'event Warning ErrImportFailed: DataVolume too small to contain image',
        'deletePod importer-disk',
      ],
    },
    {
      what: 'success: complete, labels, preallocation, event, pod deleted',
      pvc: claim({
        ...ENDPOINT,
        [Annotations.PodRestarts]: '0',
        [Annotations.PodPhase]: 'Running',
      }),
      pod: pod('Succeeded', {
        state: { terminated: { exitCode: 0, reason: 'Completed', message: OK_MSG } },
      }),
      want: [
        'patch condition.running=false,condition.running.reason=Completed,condition.running.message=Import Complete,pod.phase=Succeeded,preallocation=true labels={"l":"v"}',
        'event Normal ImportSucceeded: Import Successful',
        'deletePod importer-disk',
      ],
    },
    {
      what: 'success with retainAfterCompletion keeps the pod',
      pvc: claim({
        ...ENDPOINT,
        [Annotations.PodRestarts]: '0',
        [Annotations.RetainAfterCompletion]: 'true',
      }),
      pod: pod('Succeeded', {
        state: { terminated: { exitCode: 0, message: '{"message":"Import Complete"}' } },
      }),
      want: [
        'patch condition.running=false,condition.running.reason=Completed,condition.running.message=Import Complete,pod.phase=Succeeded',
        'event Normal ImportSucceeded: Import Successful',
      ],
    },
    {
      what: 'scratch required: flag set, pod deleted for a re-run',
      pvc: claim({
        ...ENDPOINT,
        [Annotations.PodRestarts]: '0',
        [Annotations.PodPhase]: 'Running',
      }),
      pod: pod('Succeeded', {
        state: { terminated: { exitCode: 0, message: '{"scratchSpaceRequired":true}' } },
      }),
      want: [
        'patch condition.running=false,condition.running.reason=Scratch space required,condition.running.message=scratch space required and none found,import.requiresScratch=true',
        'deletePod importer-disk',
      ],
    },
    {
      what: 'image cannot be pulled',
      pvc: claim({ ...ENDPOINT, [Annotations.PodRestarts]: '0' }),
      pod: pod('Pending', {
        image: 'bad/img',
        state: { waiting: { reason: 'ErrImagePull', message: 'no' } },
      }),
      want: [
        'patch condition.running=false,condition.running.reason=ImagePullFailed,condition.running.message=failed to pull image: bad/img,pod.phase=Pending',
      ],
    },
    {
      what: "a node pull's disk image cannot be pulled while the importer runs",
      pvc: claim({ ...ENDPOINT, [Annotations.PodRestarts]: '0' }),
      pod: {
        ...pod('Running'),
        status: {
          phase: 'Running',
          containerStatuses: [
            {
              name: 'importer',
              image: 'img',
              imageID: '',
              ready: true,
              started: true,
              restartCount: 0,
              state: { running: {} },
            },
            {
              name: 'server',
              image: 'reg/disk:nope',
              imageID: '',
              ready: false,
              started: false,
              restartCount: 0,
              state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off' } },
            },
          ],
        },
      },
      want: [
        'patch condition.running=false,condition.running.reason=ImagePullFailed,condition.running.message=failed to pull image: reg/disk:nope,pod.phase=Running',
      ],
    },
    {
      what: 'unschedulable pod',
      pvc: claim({ ...ENDPOINT, [Annotations.PodRestarts]: '0' }),
      pod: {
        ...pod('Pending'),
        status: {
          phase: 'Pending',
          conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }],
        },
      },
      want: [
        'patch condition.running=false,condition.running.reason=Unschedulable,condition.running.message=Importer pod cannot be scheduled,pod.schedulable=false,pod.phase=Pending',
      ],
    },
    {
      what: 'claim being deleted: the running importer is stopped',
      pvc: {
        ...claim(ENDPOINT),
        metadata: {
          name: 'disk',
          namespace: 'ns',
          annotations: ENDPOINT,
          deletionTimestamp: new Date(),
        },
      },
      pod: pod('Running', { state: { running: {} } }),
      want: ['deletePod importer-disk'],
    },
    {
      what: 'pod being deleted: wait',
      pvc: claim(ENDPOINT),
      pod: {
        ...pod('Running'),
        metadata: { name: 'importer-disk', deletionTimestamp: new Date() },
      },
      want: [],
    },
  ])('$what', ({ pvc, pod: p, wffc, want }) => {
    const actions = decideImport({
      pvc,
      pod: p,
      config,
      settings,
      waitForFirstConsumer: wffc ?? false,
    });
    expect(
      summarize(actions).map((s) =>
        s.replace(/cdi\.kubevirt\.io\/storage\./g, '').replace(/storage\./g, ''),
      ),
    ).toEqual(want.map((s) => s.replace(/storage\./g, '')));
  });
});
