// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import {
  chooseSnapshotStrategy,
  chooseStrategy,
  compatibleSnapshotClass,
  FallbackReasons as F,
  type ClaimStrategyInput,
} from './clone-strategy.js';

const P = 'csi.example.com';
const base: ClaimStrategyInput = {
  source: { namespace: 'ns', provisioner: P, block: false, bytes: 100 },
  target: { namespace: 'ns', provisioner: P, block: false, bytes: 100 },
  targetExpands: false,
  snapshotClass: 'snapclass',
};

describe('chooseStrategy', () => {
  it.each([
    { what: 'nothing asked: snapshot (CDI default)', input: {}, want: 'snapshot' },
    {
      what: 'nothing asked, no snapshot class: copy',
      input: { snapshotClass: undefined },
      want: 'copy',
      fallback: F.NoVolumeSnapshotClass,
    },
    { what: 'profile csi-clone', input: { profileStrategy: 'csi-clone' }, want: 'csi-clone' },
    {
      what: 'profile csi-clone needs no snapshot class',
      input: { profileStrategy: 'csi-clone', snapshotClass: undefined },
      want: 'csi-clone',
    },
    { what: 'profile copy', input: { profileStrategy: 'copy' }, want: 'copy' },
    {
      what: 'override wins over the profile',
      input: { profileStrategy: 'csi-clone', override: 'copy' },
      want: 'copy',
    },
    {
      what: 'an unknown override is ignored',
      input: { override: 'teleport', profileStrategy: 'csi-clone' },
      want: 'csi-clone',
    },
    {
      what: 'different provisioners',
      input: {
        profileStrategy: 'csi-clone',
        target: { ...base.target, provisioner: 'other.example.com' },
      },
      want: 'copy',
      fallback: F.IncompatibleProvisioners,
    },
    {
      what: 'different volume modes',
      input: { target: { ...base.target, block: true } },
      want: 'copy',
      fallback: F.IncompatibleVolumeModes,
    },
    {
      what: 'a larger target on a class without expansion',
      input: { profileStrategy: 'csi-clone', target: { ...base.target, bytes: 200 } },
      want: 'copy',
      fallback: F.NoVolumeExpansion,
    },
    {
      what: 'a larger target on an expandable class',
      input: {
        profileStrategy: 'csi-clone',
        target: { ...base.target, bytes: 200 },
        targetExpands: true,
      },
      want: 'csi-clone',
    },
    {
      what: 'another namespace: the network clone',
      input: { target: { ...base.target, namespace: 'other' } },
      want: 'copy',
      fallback: F.CrossNamespace,
    },
    {
      what: 'copy asked across namespaces: no fallback',
      input: { override: 'copy', target: { ...base.target, namespace: 'other' } },
      want: 'copy',
    },
  ])('$what', ({ input, want, fallback }) => {
    const got = chooseStrategy({ ...base, ...input });
    expect(got.strategy).toBe(want);
    expect(got.fallback).toEqual(fallback);
  });
});

describe('chooseSnapshotStrategy', () => {
  const snap = { driver: P, block: false, bytes: 100 };
  const target = { provisioner: P, block: false, bytes: 100 };
  it.each([
    { what: 'same driver, mode and size', input: {}, want: 'snapshot' },
    {
      what: 'another driver',
      input: { snapshot: { ...snap, driver: 'x' } },
      want: 'copy',
      fallback: F.NoProvisionerMatch,
    },
    {
      what: 'a smaller target',
      input: { target: { ...target, bytes: 50 } },
      want: 'copy',
      fallback: F.NoVolumeExpansion,
    },
    {
      what: 'a larger target without expansion',
      input: { target: { ...target, bytes: 200 } },
      want: 'copy',
      fallback: F.NoVolumeExpansion,
    },
    {
      what: 'a larger target with expansion',
      input: { target: { ...target, bytes: 200 }, targetExpands: true },
      want: 'snapshot',
    },
    {
      what: 'another mode',
      input: { target: { ...target, block: true } },
      want: 'copy',
      fallback: F.IncompatibleVolumeModes,
    },
  ])('$what', ({ input, want, fallback }) => {
    const got = chooseSnapshotStrategy({ snapshot: snap, target, targetExpands: false, ...input });
    expect(got.strategy).toBe(want);
    expect(got.fallback).toEqual(fallback);
  });
});

describe('compatibleSnapshotClass', () => {
  const classes = [
    { name: 'b', driver: P, isDefault: false },
    { name: 'a', driver: P, isDefault: false },
    { name: 'd', driver: P, isDefault: true },
    { name: 'other', driver: 'x', isDefault: true },
  ];
  it.each([
    { what: "the profile's class", profile: 'b', want: 'b' },
    { what: "a profile's class of another driver", profile: 'other', want: undefined },
    { what: 'the default class of the driver', profile: undefined, want: 'd' },
  ])('$what', ({ profile, want }) => {
    expect(compatibleSnapshotClass(classes, P, profile)).toBe(want);
  });
  it('the first by name when none is default', () => {
    expect(compatibleSnapshotClass(classes.slice(0, 2), P, undefined)).toBe('a');
  });
  it('none for a driver without classes', () => {
    expect(compatibleSnapshotClass(classes, 'none', undefined)).toBeUndefined();
  });
});
