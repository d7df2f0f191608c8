// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { buildTransferPod, passedAnnotations } from './transfer-pod.js';

function claim(annotations: Record<string, string> = {}): V1PersistentVolumeClaim {
  return { metadata: { name: 'disk', namespace: 'ns', uid: 'u', annotations }, spec: {} };
}

function pod(
  pvc: V1PersistentVolumeClaim,
  placement?: Parameters<typeof buildTransferPod>[0]['placement'],
) {
  return buildTransferPod({
    pvc,
    name: 'importer-disk',
    labels: {},
    container: { name: 'importer' },
    volumes: [],
    mounts: [],
    ...(placement === undefined ? {} : { placement }),
  });
}

describe('passedAnnotations', () => {
  it.each([
    {
      what: 'defaults only',
      pvc: claim(),
      want: { 'sidecar.istio.io/inject': 'false', 'linkerd.io/inject': 'disabled' },
    },
    {
      what: 'Multus networks and an istio override pass; others do not',
      pvc: claim({
        'k8s.v1.cni.cncf.io/networks': 'storage-net',
        'v1.multus-cni.io/default-network': 'ns/default-net',
        'sidecar.istio.io/inject': 'true',
        'example.com/other': 'x',
      }),
      want: {
        'k8s.v1.cni.cncf.io/networks': 'storage-net',
        'v1.multus-cni.io/default-network': 'ns/default-net',
        'sidecar.istio.io/inject': 'true',
        'linkerd.io/inject': 'disabled',
      },
    },
  ])('$what', ({ pvc, want }) => {
    expect(passedAnnotations(pvc)).toEqual(want);
  });

  it('reach the pod beside the controller’s own', () => {
    const annotations = pod(claim({ 'k8s.v1.cni.cncf.io/networks': 'storage-net' })).metadata
      ?.annotations;
    expect(annotations).toMatchObject({
      'cdi.kubevirt.io/storage.createdByController': 'yes',
      'k8s.v1.cni.cncf.io/networks': 'storage-net',
    });
  });
});

describe('workload placement', () => {
  it('puts nodeSelector, tolerations and affinity on the pod', () => {
    const affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] },
          ],
        },
      },
    };
    const spec = pod(claim(), {
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ key: 'storage', operator: 'Exists', effect: 'NoSchedule' }],
      affinity,
    }).spec;
    expect(spec?.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(spec?.tolerations).toEqual([
      { key: 'storage', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    expect(spec?.affinity).toEqual(affinity);
  });

  it.each([
    { placement: undefined },
    { placement: { nodeSelector: {}, tolerations: [], affinity: {} } },
  ])('leaves the fields out when empty ($placement)', ({ placement }) => {
    const spec = pod(claim(), placement).spec;
    expect([spec?.nodeSelector, spec?.tolerations, spec?.affinity]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });
});
