// SPDX-License-Identifier: Apache-2.0
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ClaimPropertySet, DataVolume, StorageProfile } from '../../common/api/datavolume.js';
import { computeOperationalMetrics, type OperationalInput } from './operational.js';

const empty: OperationalInput = {
  dataVolumes: [],
  pods: [],
  storageClasses: [],
  storageProfiles: [],
};

function dv(name: string, phase: string | undefined, storageClassName?: string): DataVolume {
  return {
    metadata: { name, namespace: 'ns' },
    spec: {
      source: { blank: {} },
      storage: { ...(storageClassName === undefined ? {} : { storageClassName }) },
    },
    ...(phase === undefined ? {} : { status: { phase } }),
  } as DataVolume;
}

function pod(component: string, restarts: number, clone = false): V1Pod {
  return {
    metadata: { name: `p-${component}-${restarts}`, labels: { 'cdi.kubevirt.io': component } },
    spec: {
      containers: [{ name: 'c' }],
      volumes: clone ? [{ name: 'cdi-clone-source' }] : [{ name: 'cdi-data-vol' }],
    },
    status: { containerStatuses: [{ name: 'c', restartCount: restarts } as never] },
  };
}

function profile(
  name: string,
  sets: ClaimPropertySet[] | undefined,
  cloneStrategy?: string,
): StorageProfile {
  return {
    metadata: { name },
    status: {
      storageClass: name,
      provisioner: `prov-${name}`,
      ...(sets === undefined ? {} : { claimPropertySets: sets }),
      ...(cloneStrategy === undefined ? {} : { cloneStrategy }),
    },
  };
}

describe('computeOperationalMetrics', () => {
  it.each([
    { what: 'none', dvs: [], pending: 0 },
    { what: 'unset phase on the default class', dvs: [dv('a', undefined)], pending: 1 },
    { what: 'Pending on the default class', dvs: [dv('a', 'Pending')], pending: 1 },
    { what: 'a named class does not count', dvs: [dv('a', 'Pending', 'fast')], pending: 0 },
    { what: 'a running import does not count', dvs: [dv('a', 'ImportInProgress')], pending: 0 },
    {
      what: 'several',
      dvs: [dv('a', 'Pending'), dv('b', undefined), dv('c', 'Succeeded')],
      pending: 2,
    },
  ])('kubevirt_cdi_datavolume_pending: $what', ({ dvs, pending }) => {
    expect(computeOperationalMetrics({ ...empty, dataVolumes: dvs }).dataVolumePending).toBe(
      pending,
    );
  });

  it('counts pods restarted more than 3 times by kind', () => {
    const m = computeOperationalMetrics({
      ...empty,
      pods: [
        pod('importer', 4),
        pod('importer', 3),
        pod('importer', 9, true),
        pod('cdi-upload-server', 5),
        pod('cdi-upload-server', 5),
        pod('something-else', 50),
      ],
    });
    expect([m.importPodsHighRestart, m.clonePodsHighRestart, m.uploadPodsHighRestart]).toEqual([
      1, 1, 2,
    ]);
  });

  it.each([
    {
      what: 'complete RWO, default class',
      p: profile('a', [{ accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' }]),
      annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
      want: {
        complete: 'true',
        default: 'true',
        virtdefault: 'false',
        rwx: 'false',
        smartclone: 'false',
        degraded: 'true',
      },
    },
    {
      what: 'no sets: incomplete',
      p: profile('b', undefined),
      annotations: {},
      want: { complete: 'false', default: 'false', rwx: 'false', degraded: 'true' },
    },
    {
      what: 'a set without volume mode: incomplete',
      p: profile('c', [{ accessModes: ['ReadWriteMany'] }]),
      annotations: {},
      want: { complete: 'false', rwx: 'true' },
    },
    {
      what: 'RWX with csi-clone, virt default: not degraded',
      p: profile('d', [{ accessModes: ['ReadWriteMany'], volumeMode: 'Block' }], 'csi-clone'),
      annotations: { 'storageclass.kubevirt.io/is-default-virt-class': 'true' },
      want: {
        complete: 'true',
        virtdefault: 'true',
        rwx: 'true',
        smartclone: 'true',
        degraded: 'false',
      },
    },
  ])('kubevirt_cdi_storageprofile_info: $what', ({ p, annotations, want }) => {
    const name = p.metadata.name ?? '';
    const [series] = computeOperationalMetrics({
      ...empty,
      storageProfiles: [p],
      storageClasses: [{ name, annotations }],
    }).storageProfiles;
    expect(series).toMatchObject({ storageclass: name, provisioner: `prov-${name}`, ...want });
  });

  it('skips a profile whose status does not name its class yet', () => {
    const p = { metadata: { name: 'x' }, status: {} } as StorageProfile;
    expect(computeOperationalMetrics({ ...empty, storageProfiles: [p] }).storageProfiles).toEqual(
      [],
    );
  });
});
