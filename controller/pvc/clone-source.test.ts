// SPDX-License-Identifier: Apache-2.0
import type { V1ContainerStatus, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import { summarize, testConfig as config, testSettings as settings } from './testing.js';
import { cloneWaitMessage, isPopulated } from './clone-source.js';
import { decideImport, isImportClaim } from './import-reconcile.js';

function claim(
  name: string,
  annotations: Record<string, string>,
  phase = 'Bound',
): V1PersistentVolumeClaim {
  return {
    metadata: { name, namespace: 'ns', uid: `${name}-uid`, annotations },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    status: { phase },
  };
}

const target = (anns: Record<string, string> = {}): V1PersistentVolumeClaim =>
  claim('disk', { [Annotations.CloneRequest]: 'ns/golden', ...anns });
const golden = claim('golden', {});

function pod(phase: string, cs?: Partial<V1ContainerStatus>): V1Pod {
  return {
    metadata: { name: 'importer-disk', namespace: 'ns', uid: 'pod-uid' },
    status: {
      phase,
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

describe('isPopulated', () => {
  it.each([
    { what: 'a bare bound claim', pvc: claim('g', {}), want: true },
    { what: 'a bare pending claim', pvc: claim('g', {}, 'Pending'), want: false },
    {
      what: 'an import still running',
      pvc: claim('g', { [Annotations.Endpoint]: 'http://h/x', [Annotations.PodPhase]: 'Running' }),
      want: false,
    },
    {
      what: 'a finished import',
      pvc: claim('g', {
        [Annotations.Endpoint]: 'http://h/x',
        [Annotations.PodPhase]: 'Succeeded',
      }),
      want: true,
    },
    {
      what: 'an upload not done',
      pvc: claim('g', { [Annotations.UploadTarget]: '' }),
      want: false,
    },
    {
      what: 'a finished clone (clone of a clone)',
      pvc: claim('g', { [Annotations.CloneRequest]: 'ns/x', [Annotations.PodPhase]: 'Succeeded' }),
      want: true,
    },
  ])('$what → $want', ({ pvc, want }) => {
    expect(isPopulated(pvc)).toBe(want);
  });
});

describe('cloneWaitMessage', () => {
  it.each([
    { what: 'not a clone', pvc: claim('disk', {}), source: undefined, want: undefined },
    {
      what: 'source missing',
      pvc: target(),
      source: undefined,
      want: "The source pvc golden doesn't exist",
    },
    {
      what: 'source being deleted',
      pvc: target(),
      source: { ...golden, metadata: { ...golden.metadata, deletionTimestamp: new Date() } },
      want: 'The source pvc golden is being deleted',
    },
    { what: 'source ready', pvc: target(), source: golden, want: undefined },
    {
      what: 'another namespace, source missing',
      pvc: claim('disk', { [Annotations.CloneRequest]: 'images/golden' }),
      source: undefined,
      want: "The source pvc golden doesn't exist",
    },
  ])('$what', ({ pvc, source, want }) => {
    expect(cloneWaitMessage(pvc, source)).toBe(want);
  });
});

describe('decideImport of a clone target', () => {
  it('serves claims with a clone request', () => {
    expect(isImportClaim(target())).toBe(true);
  });

  it.each<{
    what: string;
    pvc: V1PersistentVolumeClaim;
    source?: V1PersistentVolumeClaim;
    pod?: V1Pod;
    users?: string[];
    want: string[];
  }>([
    {
      what: 'source missing: no pod, the cause in the running condition',
      pvc: target(),
      want: [
        "patch condition.running=false,condition.running.reason=CloneWithoutSource,condition.running.message=The source pvc golden doesn't exist",
      ],
    },
    {
      what: 'source ready: the importer pod',
      pvc: target(),
      source: golden,
      want: ['patch import.importPodName=importer-disk,pod.restarts=0', 'createPod importer-disk'],
    },
    {
      what: 'source ready but mounted by a running VM: CloneSourceInUse, no pod, look again',
      pvc: target(),
      source: golden,
      users: ['ns/virt-launcher-vm1'],
      want: [
        'event Warning CloneSourceInUse: pod ns/virt-launcher-vm1 using PersistentVolumeClaim golden',
        'requeue',
      ],
    },
    {
      what: 'copied: complete, CDI-style clone event on the claim, pod deleted',
      pvc: target({ [Annotations.PodPhase]: 'Running' }),
      source: golden,
      pod: pod('Succeeded', {
        state: {
          terminated: {
            exitCode: 0,
            message: '{"scratchSpaceRequired":false,"message":"Clone Complete"}',
          },
        },
      }),
      want: [
        'patch pod.restarts=0,condition.running=false,condition.running.reason=Completed,condition.running.message=Clone Complete,pod.phase=Succeeded',
        'event Normal CloneSucceeded: Clone Successful',
        'deletePod importer-disk',
      ],
    },
    {
      what: 'target too small: terminal',
      pvc: target({ [Annotations.PodPhase]: 'Running' }),
      source: golden,
      pod: pod('Running', {
        state: {
          terminated: {
            exitCode: 1,
            message:
              'Unable to process data: image virtual size 2 GiB (2147483648 bytes) exceeds available space 1 GiB (1073741824 bytes); a larger PVC is required',
          },
        },
      }),
      want: [
        'patch pod.restarts=0,condition.running=false,condition.running.reason=Error,condition.running.message=DataVolume too small to contain image,pod.phase=Failed,import.fatalError=true',
        'event Warning ErrImportFailed: DataVolume too small to contain image',
        'deletePod importer-disk',
      ],
    },
  ])('$what', ({ pvc, source, pod: p, users, want }) => {
    const actions = decideImport({
      pvc,
      pod: p,
      config,
      settings,
      waitForFirstConsumer: false,
      cloneSource: source,
      ...(users === undefined ? {} : { cloneSourceUsers: users }),
    });
    expect(summarize(actions)).toEqual(want);
  });
});
