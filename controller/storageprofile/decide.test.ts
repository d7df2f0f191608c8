// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import type { StorageProfile } from '../../common/api/datavolume.js';
import type { Action } from '../actions.js';
import {
  decideStorageProfile,
  desiredProfileStatus,
  statusPatch,
  type StorageProfileInput,
} from './decide.js';

const SANDBOX = 'sandbox.cdi.kubevirt.io/hostpath';

function profile(
  spec: StorageProfile['spec'],
  status?: StorageProfile['status'],
  deleting = false,
): StorageProfile {
  return {
    metadata: {
      name: 'standard',
      ...(deleting ? { deletionTimestamp: '2026-11-22T00:00:00Z' } : {}),
    },
    ...(spec === undefined ? {} : { spec }),
    ...(status === undefined ? {} : { status }),
  };
}

const sandboxStatus = desiredProfileStatus({ name: 'standard', provisioner: SANDBOX }, {});

describe('desiredProfileStatus', () => {
  it.each<{
    what: string;
    provisioner: string;
    spec: StorageProfile['spec'];
    sets: unknown;
  }>([
    {
      what: 'the sandbox provisioner: Filesystem first, then Block',
      provisioner: SANDBOX,
      spec: {},
      sets: [
        { accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' },
        { accessModes: ['ReadWriteOnce'], volumeMode: 'Block' },
      ],
    },
    {
      what: 'ceph rbd from the known table, RWX Block first',
      provisioner: 'rook-ceph.rbd.csi.ceph.com',
      spec: undefined,
      sets: [
        { accessModes: ['ReadWriteMany'], volumeMode: 'Block' },
        { accessModes: ['ReadWriteOnce'], volumeMode: 'Block' },
        { accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' },
      ],
    },
    {
      what: 'no-provisioner',
      provisioner: 'kubernetes.io/no-provisioner',
      spec: {},
      sets: [{ accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' }],
    },
    {
      what: 'an unknown provisioner has none',
      provisioner: 'example.com/unknown',
      spec: {},
      sets: undefined,
    },
    {
      what: 'the admin spec wins over the table',
      provisioner: SANDBOX,
      spec: { claimPropertySets: [{ accessModes: ['ReadWriteOnce'], volumeMode: 'Block' }] },
      sets: [{ accessModes: ['ReadWriteOnce'], volumeMode: 'Block' }],
    },
    {
      what: 'an empty admin list falls back to the table',
      provisioner: 'hostpath.csi.kubevirt.io',
      spec: { claimPropertySets: [] },
      sets: [{ accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' }],
    },
  ])('$what', ({ provisioner, spec, sets }) => {
    const status = desiredProfileStatus({ name: 'standard', provisioner }, spec);
    expect(status.storageClass).toBe('standard');
    expect(status.provisioner).toBe(provisioner);
    expect(status.claimPropertySets).toEqual(sets);
  });

  it('copies the admin sets instead of aliasing them', () => {
    const spec = { claimPropertySets: [{ accessModes: ['ReadWriteMany'] }] };
    const status = desiredProfileStatus({ name: 'x', provisioner: 'p' }, spec);
    status.claimPropertySets?.[0]?.accessModes?.push('ReadWriteOnce');
    expect(spec.claimPropertySets[0]?.accessModes).toEqual(['ReadWriteMany']);
  });

  it('copies cloneStrategy and snapshotClass from the spec', () => {
    const status = desiredProfileStatus(
      { name: 'x', provisioner: 'p' },
      { cloneStrategy: 'copy', snapshotClass: 'snap' },
    );
    expect(status).toMatchObject({ cloneStrategy: 'copy', snapshotClass: 'snap' });
  });
});

describe('statusPatch', () => {
  it.each<{
    what: string;
    current: StorageProfile['status'];
    want: StorageProfile['status'];
    patch: Record<string, unknown> | undefined;
  }>([
    { what: 'equal: nothing', current: sandboxStatus, want: sandboxStatus, patch: undefined },
    {
      what: 'from nothing: everything',
      current: undefined,
      want: { storageClass: 'a', provisioner: 'p' },
      patch: { storageClass: 'a', provisioner: 'p' },
    },
    {
      what: 'a field no longer wanted is nulled',
      current: {
        storageClass: 'a',
        provisioner: 'p',
        claimPropertySets: [{ volumeMode: 'Block' }],
      },
      want: { storageClass: 'a', provisioner: 'p' },
      patch: { claimPropertySets: null },
    },
    {
      what: 'a changed list is replaced whole',
      current: { storageClass: 'a', claimPropertySets: [{ volumeMode: 'Block' }] },
      want: { storageClass: 'a', claimPropertySets: [{ volumeMode: 'Filesystem' }] },
      patch: { claimPropertySets: [{ volumeMode: 'Filesystem' }] },
    },
  ])('$what', ({ current, want, patch }) => {
    expect(statusPatch(current, want ?? {})).toEqual(patch);
  });
});

describe('decideStorageProfile', () => {
  const sc = { name: 'standard', provisioner: SANDBOX };
  it.each<{ what: string; input: Omit<StorageProfileInput, 'name'>; kinds: string[] }>([
    {
      what: 'a class without profile: create it and write its status',
      input: { storageClass: sc, profile: undefined },
      kinds: ['createStorageProfile', 'patchStorageProfileStatus'],
    },
    {
      what: 'a current profile: nothing',
      input: { storageClass: sc, profile: profile({}, sandboxStatus) },
      kinds: [],
    },
    {
      what: 'a new profile without status: write it',
      input: { storageClass: sc, profile: profile({}) },
      kinds: ['patchStorageProfileStatus'],
    },
    {
      what: 'the admin changed the spec: write the status',
      input: {
        storageClass: sc,
        profile: profile({ claimPropertySets: [{ volumeMode: 'Block' }] }, sandboxStatus),
      },
      kinds: ['patchStorageProfileStatus'],
    },
    {
      what: 'the class is gone: delete the profile',
      input: { storageClass: undefined, profile: profile({}, sandboxStatus) },
      kinds: ['deleteStorageProfile'],
    },
    {
      what: 'the class is gone and the profile is being deleted: nothing',
      input: { storageClass: undefined, profile: profile({}, sandboxStatus, true) },
      kinds: [],
    },
    {
      what: 'neither: nothing',
      input: { storageClass: undefined, profile: undefined },
      kinds: [],
    },
  ])('$what', ({ input, kinds }) => {
    const actions = decideStorageProfile({ name: 'standard', ...input });
    expect(actions.map((a) => a.kind)).toEqual(kinds);
  });

  it('creates a profile named after the class, with an empty spec, then its status', () => {
    const actions: Action[] = decideStorageProfile({
      name: 'standard',
      storageClass: { name: 'standard', provisioner: SANDBOX },
      profile: undefined,
    });
    const [create, status] = actions;
    expect(create).toEqual({
      kind: 'createStorageProfile',
      profile: {
        apiVersion: 'cdi.kubevirt.io/v1beta1',
        kind: 'StorageProfile',
        metadata: { name: 'standard' },
        spec: {},
      },
    });
    expect(status).toEqual({
      kind: 'patchStorageProfileStatus',
      name: 'standard',
      status: sandboxStatus,
    });
  });
});
