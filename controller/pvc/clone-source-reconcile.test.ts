// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import type { Action } from '../actions.js';
import { parseControllerSettings } from '../config.js';
import { decideCloneSource, networkCloneSource } from './clone-source-reconcile.js';

const settings = parseControllerSettings({}, 'test');

function target(
  anns: Record<string, string>,
  extra: Partial<V1PersistentVolumeClaim['metadata']> = {},
) {
  return {
    metadata: {
      name: 'vm-disk',
      namespace: 'vms',
      uid: 't-uid',
      annotations: {
        [Annotations.CloneRequest]: 'golden/fedora',
        [Annotations.UploadTarget]: '',
        [Annotations.UploadClientName]: 'golden/fedora-vms/vm-disk',
        ...anns,
      },
      ownerReferences: [
        {
          apiVersion: 'cdi.kubevirt.io/v1beta1',
          kind: 'DataVolume',
          name: 'vm-disk',
          uid: 'dv-uid',
        },
      ],
      ...extra,
    },
    spec: { resources: { requests: { storage: '1Gi' } } },
    status: { phase: 'Bound' },
  } satisfies V1PersistentVolumeClaim;
}

const source: V1PersistentVolumeClaim = {
  metadata: { name: 'fedora', namespace: 'golden' },
  spec: { volumeMode: 'Block' },
  status: { phase: 'Bound' },
};

const ourPod = (phase: string): V1Pod => ({
  metadata: { name: 't-uid-source-pod', namespace: 'golden' },
  status: { phase },
});

function summary(actions: readonly Action[]): string[] {
  return actions.map((a) => {
    if (a.kind === 'event') return `event ${a.target.kind} ${a.reason}: ${a.message}`;
    if (a.kind === 'deletePod' || a.kind === 'deleteSecret')
      return `${a.kind} ${a.namespace}/${a.name}`;
    if (a.kind === 'createCloneSourcePod')
      return `createCloneSourcePod ${a.pod.metadata?.namespace ?? ''}/${a.pod.metadata?.name ?? ''} as ${a.clientName}`;
    return a.kind;
  });
}

const READY = { [Annotations.PodReady]: 'true', [Annotations.PodPhase]: 'Running' };

describe('decideCloneSource', () => {
  it.each([
    {
      what: 'upload server not ready yet: waits',
      pvc: target({ [Annotations.PodReady]: 'false' }),
      want: [],
    },
    {
      what: 'ready, source free: Secret and pod in the source namespace',
      pvc: target(READY),
      want: ['createCloneSourcePod golden/t-uid-source-pod as golden/fedora-vms/vm-disk'],
    },
    {
      what: 'ready, source used by a VM: waits with CloneSourceInUse on the DataVolume',
      pvc: target(READY),
      using: ['golden/virt-launcher-vm1'],
      want: [
        'event DataVolume CloneSourceInUse: pod golden/virt-launcher-vm1 using PersistentVolumeClaim fedora',
        'requeue',
      ],
    },
    {
      what: 'source pod running: nothing to do',
      pvc: target(READY),
      pod: ourPod('Running'),
      want: [],
    },
    {
      what: 'source pod failed for good: replaced',
      pvc: target(READY),
      pod: ourPod('Failed'),
      want: ['deletePod golden/t-uid-source-pod'],
    },
    {
      what: 'clone complete: pod and Secret removed',
      pvc: target({ [Annotations.PodPhase]: 'Succeeded' }),
      pod: ourPod('Succeeded'),
      want: ['deletePod golden/t-uid-source-pod', 'deleteSecret golden/t-uid-source-pod'],
    },
    {
      what: 'target being deleted: pod and Secret removed',
      pvc: target(READY, { deletionTimestamp: new Date() }),
      pod: ourPod('Running'),
      want: ['deletePod golden/t-uid-source-pod', 'deleteSecret golden/t-uid-source-pod'],
    },
    {
      what: 'no service IP yet: waits',
      pvc: target(READY),
      ip: null,
      want: [],
    },
  ])('$what', ({ pvc, pod, using, ip, want }) => {
    const actions = decideCloneSource({
      target: pvc,
      source,
      sourcePod: pod,
      podsUsingSource: using ?? [],
      serviceIp: ip === null ? undefined : '127.9.0.4',
      settings,
    });
    expect(summary(actions)).toEqual(want);
  });

  it('builds the pod as CDI does: read-only source, cloner env, the Service dialled by IP', () => {
    const [action] = decideCloneSource({
      target: target(READY),
      source,
      sourcePod: undefined,
      podsUsingSource: [],
      serviceIp: '127.9.0.4',
      settings,
    });
    if (action?.kind !== 'createCloneSourcePod') throw new Error('no pod');
    const c = action.pod.spec?.containers[0];
    const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value ?? 'from-secret']));
    expect(env).toMatchObject({
      UPLOAD_URL: 'https://cdi-upload-vm-disk.vms.svc:8443/v1beta1/upload-clone',
      UPLOAD_SERVER_ADDRESS: '127.9.0.4',
      VOLUME_MODE: 'block',
      MOUNT_POINT: '/dev/cdi-clone-source',
      OWNER_UID: 'dv-uid',
      CLIENT_KEY: 'from-secret',
    });
    expect(c?.command).toEqual(['cdi', 'clone-source']);
    expect(c?.volumeDevices).toEqual([
      { name: 'cdi-clone-source', devicePath: '/dev/cdi-clone-source' },
    ]);
    expect(action.pod.spec?.volumes?.[0]?.persistentVolumeClaim).toEqual({
      claimName: 'fedora',
      readOnly: true,
    });
  });

  it.each([
    {
      anns: { [Annotations.CloneRequest]: 'golden/fedora', [Annotations.UploadTarget]: '' },
      want: 'golden/fedora',
    },
    {
      anns: { [Annotations.CloneRequest]: 'vms/fedora', [Annotations.UploadTarget]: '' },
      want: undefined,
    },
    { anns: { [Annotations.CloneRequest]: 'golden/fedora' }, want: undefined },
  ])('networkCloneSource of $anns is $want', ({ anns, want }) => {
    const ref = networkCloneSource({ metadata: { namespace: 'vms', annotations: anns } });
    expect(ref === undefined ? undefined : `${ref.namespace}/${ref.name}`).toBe(want);
  });
});
