// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import type { DataSource, DataVolume, DataVolumeStatus } from '../../common/api/datavolume.js';
import type { Action, CreatePvcAction, EventAction, UpdateDvStatusAction } from '../actions.js';
import { effectiveConfig } from '../config.js';
import { resolveCloneSource, type ResolvedCloneSource } from './clone-resolve.js';
import { decideDataVolume } from './decide.js';
import { derivePhase } from './phase.js';

const config = effectiveConfig(undefined, [
  { name: 'standard', isDefault: true, volumeBindingMode: 'Immediate' },
]);
const NOW = '2026-11-22T00:00:00Z';
const CLONE = { [Annotations.CloneRequest]: 'ns/golden' };

function dv(status?: DataVolumeStatus, spec?: DataVolume['spec']): DataVolume {
  return {
    metadata: { name: 'disk', namespace: 'ns', uid: 'dv-uid' },
    spec: spec ?? { source: { pvc: { namespace: 'ns', name: 'golden' } }, storage: {} },
    ...(status === undefined ? {} : { status }),
  };
}

function claim(
  name: string,
  annotations: Record<string, string>,
  phase = 'Bound',
  owner: string | undefined = 'dv-uid',
): V1PersistentVolumeClaim {
  return {
    metadata: {
      name,
      namespace: 'ns',
      annotations,
      ...(owner === undefined
        ? {}
        : {
            ownerReferences: [
              { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', name, uid: owner },
            ],
          }),
    },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '100Mi' } } },
    status: { phase },
  };
}

/** A golden image claim: bare and bound, or the finished target of an import. */
const golden = claim('golden', {}, 'Bound', undefined);
const importing = claim(
  'golden',
  { [Annotations.Endpoint]: 'http://h/x', [Annotations.PodPhase]: 'Running' },
  'Bound',
  'other',
);
const imported = claim(
  'golden',
  { [Annotations.Endpoint]: 'http://h/x', [Annotations.PodPhase]: 'Succeeded' },
  'Bound',
  'other',
);

const source = (pvc: V1PersistentVolumeClaim | undefined): ResolvedCloneSource => ({
  kind: 'claim',
  ref: { namespace: 'ns', name: 'golden' },
  pvc,
});

function summary(actions: readonly Action[]): string[] {
  return actions.map((a) =>
    a.kind === 'event' ? `event ${a.type} ${a.reason}: ${a.message}` : a.kind,
  );
}

function statusOf(actions: readonly Action[]): DataVolumeStatus | undefined {
  return actions.find((a): a is UpdateDvStatusAction => a.kind === 'updateDvStatus')?.status;
}

describe('decideDataVolume for clones', () => {
  it.each<{
    what: string;
    dv: DataVolume;
    pvc?: V1PersistentVolumeClaim;
    cloneSource?: ResolvedCloneSource;
    cloneTokenProblem?: string;
    progress?: string;
    want: string[];
    phase?: string;
    running?: string;
  }>([
    {
      what: 'source missing: waits, no claim, Running says why',
      dv: dv(),
      cloneSource: source(undefined),
      want: [
        'updateDvStatus',
        'event Normal Pending: PVC disk Pending',
        "event Warning CloneWithoutSource: The source pvc golden doesn't exist",
      ],
      phase: 'Pending',
      running: "False CloneWithoutSource The source pvc golden doesn't exist",
    },
    {
      what: 'source not bound: waits',
      dv: dv({ phase: 'Pending' }),
      cloneSource: source(claim('golden', {}, 'Pending', undefined)),
      want: [
        'updateDvStatus',
        'event Warning CloneWithoutSource: The source pvc golden is not bound yet',
      ],
      phase: 'Pending',
    },
    {
      what: 'source still being imported: waits',
      dv: dv({ phase: 'Pending' }),
      cloneSource: source(importing),
      want: [
        'updateDvStatus',
        'event Warning CloneWithoutSource: The source pvc golden is still being populated',
      ],
      phase: 'Pending',
    },
    {
      what: 'DataSource missing: waits',
      dv: dv(undefined, { sourceRef: { kind: 'DataSource', name: 'fedora' }, storage: {} }),
      cloneSource: { kind: 'unresolved', message: "The source DataSource fedora doesn't exist" },
      want: [
        'updateDvStatus',
        'event Normal Pending: PVC disk Pending',
        "event Warning CloneWithoutSource: The source DataSource fedora doesn't exist",
      ],
      phase: 'Pending',
    },
    {
      what: 'source bound and bare: creates the target',
      dv: dv(),
      cloneSource: source(golden),
      want: ['createPvc'],
    },
    {
      what: 'source imported: creates the target',
      dv: dv({ phase: 'Pending' }),
      cloneSource: source(imported),
      want: ['createPvc'],
    },
    {
      what: 'target smaller than the source: Failed, no claim',
      dv: dv(undefined, {
        source: { pvc: { name: 'golden' } },
        pvc: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '50Mi' } } },
      }),
      cloneSource: source(golden),
      want: ['updateDvStatus', 'event Warning ErrInvalidSpec'],
      phase: 'Failed',
    },
    {
      what: 'a DataSource pointing into another namespace, without a valid token: waits',
      dv: dv(undefined, { sourceRef: { kind: 'DataSource', name: 'fedora' }, storage: {} }),
      cloneSource: { kind: 'claim', ref: { namespace: 'images', name: 'fedora' }, pvc: golden },
      cloneTokenProblem: 'clone token missing',
      want: [
        'updateDvStatus',
        'event Normal Pending: PVC disk Pending',
        "event Warning CloneValidationFailed: The clone doesn't meet the validation requirements: clone token missing",
      ],
      phase: 'Pending',
      running:
        "False CloneValidationFailed The clone doesn't meet the validation requirements: clone token missing",
    },
    {
      what: 'another namespace with a valid token: waits for the source like any clone',
      dv: dv(undefined, { source: { pvc: { namespace: 'images', name: 'fedora' } }, storage: {} }),
      cloneSource: { kind: 'claim', ref: { namespace: 'images', name: 'fedora' }, pvc: importing },
      want: [
        'updateDvStatus',
        'event Normal Pending: PVC disk Pending',
        'event Warning CloneWithoutSource: The source pvc fedora is still being populated',
      ],
      phase: 'Pending',
    },
    {
      what: 'importer pod pending: CloneScheduled',
      dv: dv({ phase: 'Pending' }),
      pvc: claim('disk', {
        ...CLONE,
        [Annotations.ImportPodName]: 'importer-disk',
        [Annotations.PodPhase]: 'Pending',
      }),
      want: [
        'updateDvStatus',
        'event Normal CloneScheduled: Cloning from ns/golden into ns/disk scheduled',
        'requeue',
      ],
      phase: 'CloneScheduled',
    },
    {
      what: 'importer pod running: CloneInProgress with progress',
      dv: dv({ phase: 'CloneScheduled' }),
      pvc: claim('disk', { ...CLONE, [Annotations.PodPhase]: 'Running' }),
      progress: '42.00%',
      want: [
        'updateDvStatus',
        'event Normal CloneInProgress: Cloning from ns/golden into ns/disk in progress',
        'requeue',
      ],
      phase: 'CloneInProgress',
    },
    {
      what: 'copied: Succeeded',
      dv: dv({ phase: 'CloneInProgress' }),
      pvc: claim('disk', {
        ...CLONE,
        [Annotations.PodPhase]: 'Succeeded',
        [Annotations.RunningCondition]: 'false',
        [Annotations.RunningConditionReason]: 'Completed',
        [Annotations.RunningConditionMessage]: 'Clone Complete',
      }),
      want: [
        'updateDvStatus',
        'event Normal CloneSucceeded: Successfully cloned from ns/golden into ns/disk',
      ],
      phase: 'Succeeded',
    },
    {
      what: 'target too small at copy time: Failed',
      dv: dv({ phase: 'CloneInProgress' }),
      pvc: claim('disk', {
        ...CLONE,
        [Annotations.PodPhase]: 'Failed',
        [Annotations.FatalError]: 'true',
        [Annotations.RunningCondition]: 'false',
        [Annotations.RunningConditionReason]: 'Error',
        [Annotations.RunningConditionMessage]: 'DataVolume too small to contain image',
      }),
      want: [
        'updateDvStatus',
        'event Warning CloneFailed: Cloning from ns/golden into ns/disk failed',
        'event Warning Error: DataVolume too small to contain image',
      ],
      phase: 'Failed',
    },
  ])('$what', ({ dv: d, pvc, cloneSource, cloneTokenProblem, progress, want, phase, running }) => {
    const actions = decideDataVolume({
      dv: d,
      pvc,
      config,
      waitForFirstConsumer: false,
      now: NOW,
      ...(cloneSource === undefined ? {} : { cloneSource }),
      ...(cloneTokenProblem === undefined ? {} : { cloneTokenProblem }),
      ...(progress === undefined ? {} : { progress }),
    });
    expect(
      summary(actions).map((s) =>
        s.startsWith('event Warning ErrInvalidSpec') ? 'event Warning ErrInvalidSpec' : s,
      ),
    ).toEqual(want);
    const status = statusOf(actions);
    expect(status?.phase).toBe(phase);
    if (progress !== undefined) expect(status?.progress).toBe(progress);
    if (running !== undefined) {
      const c = status?.conditions?.find((x) => x.type === 'Running');
      expect(`${c?.status ?? ''} ${c?.reason ?? ''} ${c?.message ?? ''}`).toBe(running);
    }
  });

  it('names the size problem in CDI words', () => {
    const actions = decideDataVolume({
      dv: dv(undefined, {
        source: { pvc: { name: 'golden' } },
        storage: { resources: { requests: { storage: '10Mi' } } },
      }),
      pvc: undefined,
      config,
      waitForFirstConsumer: false,
      now: NOW,
      cloneSource: source(golden),
    });
    const event = actions.find((a): a is EventAction => a.kind === 'event');
    expect(event?.message).toMatch(
      /^The clone doesn't meet the validation requirements: target resources requests storage size is smaller than the source/,
    );
  });

  it('creates the target with the clone request and the source size', () => {
    const actions = decideDataVolume({
      dv: dv(),
      pvc: undefined,
      config,
      waitForFirstConsumer: false,
      now: NOW,
      cloneSource: source(golden),
    });
    const created = actions.find((a): a is CreatePvcAction => a.kind === 'createPvc')?.pvc;
    expect(created?.metadata?.annotations?.[Annotations.CloneRequest]).toBe('ns/golden');
    expect(created?.spec?.resources?.requests?.['storage']).toBe(String(100 * 1024 * 1024));
  });
});

describe('a clone from another namespace (network clone)', () => {
  it('creates an upload target that only the source pod may fill', () => {
    const actions = decideDataVolume({
      dv: dv(undefined, { source: { pvc: { namespace: 'images', name: 'golden' } }, storage: {} }),
      pvc: undefined,
      config,
      waitForFirstConsumer: false,
      now: NOW,
      cloneSource: { kind: 'claim', ref: { namespace: 'images', name: 'golden' }, pvc: golden },
    });
    const anns =
      actions.find((a): a is CreatePvcAction => a.kind === 'createPvc')?.pvc.metadata
        ?.annotations ?? {};
    expect(anns[Annotations.CloneRequest]).toBe('images/golden');
    expect(anns[Annotations.UploadTarget]).toBe('');
    expect(anns[Annotations.UploadClientName]).toBe('images/golden-ns/disk');
  });

  it('stores the extended token once the short one checked', () => {
    const actions = decideDataVolume({
      dv: dv(undefined, { source: { pvc: { namespace: 'images', name: 'golden' } }, storage: {} }),
      pvc: undefined,
      config,
      waitForFirstConsumer: false,
      now: NOW,
      cloneSource: { kind: 'claim', ref: { namespace: 'images', name: 'golden' }, pvc: importing },
      extendedCloneToken: 'ext.jwt',
    });
    expect(actions[0]).toEqual({
      kind: 'patchDvAnnotations',
      namespace: 'ns',
      name: 'disk',
      annotations: { 'cdi.kubevirt.io/storage.extended.clone.token': 'ext.jwt' },
    });
  });

  it.each([
    { anns: {}, want: 'CloneScheduled' },
    { anns: { [Annotations.PodPhase]: 'Pending' }, want: 'CloneScheduled' },
    {
      anns: { [Annotations.PodPhase]: 'Running', [Annotations.PodReady]: 'false' },
      want: 'CloneScheduled',
    },
    {
      anns: { [Annotations.PodPhase]: 'Running', [Annotations.PodReady]: 'true' },
      want: 'CloneInProgress',
    },
    { anns: { [Annotations.PodPhase]: 'Succeeded' }, want: 'Succeeded' },
  ])('shows $want for the upload server in state $anns', ({ anns, want }) => {
    const pvc = claim('disk', {
      [Annotations.CloneRequest]: 'images/golden',
      [Annotations.UploadTarget]: '',
      ...anns,
    });
    expect(derivePhase({ pvc, waitForFirstConsumer: false })).toBe(want);
  });
});

describe('derivePhase of a clone target', () => {
  it.each([
    { what: 'bound, no pod yet', anns: {}, want: 'PVCBound' },
    {
      what: 'pod named',
      anns: { [Annotations.ImportPodName]: 'importer-disk' },
      want: 'CloneScheduled',
    },
    { what: 'pod pending', anns: { [Annotations.PodPhase]: 'Pending' }, want: 'CloneScheduled' },
    { what: 'pod running', anns: { [Annotations.PodPhase]: 'Running' }, want: 'CloneInProgress' },
    {
      what: 'pod failed, retried',
      anns: { [Annotations.PodPhase]: 'Failed' },
      want: 'CloneInProgress',
    },
    { what: 'pod succeeded', anns: { [Annotations.PodPhase]: 'Succeeded' }, want: 'Succeeded' },
    {
      what: 'fatal',
      anns: { [Annotations.PodPhase]: 'Failed', [Annotations.FatalError]: 'true' },
      want: 'Failed',
    },
  ])('$what → $want', ({ anns, want }) => {
    expect(
      derivePhase({ pvc: claim('disk', { ...CLONE, ...anns }), waitForFirstConsumer: false }),
    ).toBe(want);
  });
});

describe('resolveCloneSource', () => {
  const fedora: DataSource = {
    metadata: { name: 'fedora', namespace: 'ns' },
    spec: { source: { pvc: { namespace: 'ns', name: 'golden' } } },
  };
  const elsewhere: DataSource = {
    metadata: { name: 'rhel', namespace: 'images' },
    spec: { source: { pvc: { namespace: 'images', name: 'rhel9' } } },
  };
  const snapshotOnly: DataSource = {
    metadata: { name: 'snap', namespace: 'ns' },
    spec: { source: { snapshot: { namespace: 'ns', name: 's' } } },
  };
  const refTo = (name: string, to: string): DataSource => ({
    metadata: { name, namespace: 'ns' },
    spec: { source: { dataSource: { name: to } } },
  });
  const chain = [
    refTo('latest', 'fedora'),
    refTo('latest-snap', 'snap'),
    refTo('deeper', 'latest'),
    refTo('dangling', 'gone'),
  ];
  const lookups = {
    pvc: (ns: string, name: string) => (ns === 'ns' && name === 'golden' ? golden : undefined),
    dataSource: (ns: string, name: string) =>
      [fedora, elsewhere, snapshotOnly, ...chain].find(
        (d) => d.metadata.namespace === ns && d.metadata.name === name,
      ),
  };
  it.each<{ what: string; spec: DataVolume['spec']; want: unknown }>([
    {
      what: 'source.pvc, namespace left out',
      spec: { source: { pvc: { name: 'golden' } } },
      want: { kind: 'claim', ref: { namespace: 'ns', name: 'golden' }, pvc: golden },
    },
    {
      what: 'source.pvc missing',
      spec: { source: { pvc: { name: 'nope' } } },
      want: { kind: 'claim', ref: { namespace: 'ns', name: 'nope' }, pvc: undefined },
    },
    {
      what: 'sourceRef to a DataSource',
      spec: { sourceRef: { kind: 'DataSource', name: 'fedora' } },
      want: { kind: 'claim', ref: { namespace: 'ns', name: 'golden' }, pvc: golden },
    },
    {
      what: 'sourceRef to a DataSource in another namespace (its claim is never read)',
      spec: { sourceRef: { kind: 'DataSource', namespace: 'images', name: 'rhel' } },
      want: { kind: 'claim', ref: { namespace: 'images', name: 'rhel9' }, pvc: undefined },
    },
    {
      what: 'sourceRef to a missing DataSource',
      spec: { sourceRef: { kind: 'DataSource', name: 'ubuntu' } },
      want: { kind: 'unresolved', message: "The source DataSource ubuntu doesn't exist" },
    },
    {
      what: 'sourceRef to a snapshot DataSource',
      spec: { sourceRef: { kind: 'DataSource', name: 'snap' } },
      want: { kind: 'snapshot', ref: { namespace: 'ns', name: 's' } },
    },
    {
      what: 'source.snapshot, namespace left out',
      spec: { source: { snapshot: { name: 's2' } } },
      want: { kind: 'snapshot', ref: { namespace: 'ns', name: 's2' } },
    },
    {
      what: 'sourceRef to a DataSource referring to a claim DataSource (chain)',
      spec: { sourceRef: { kind: 'DataSource', name: 'latest' } },
      want: { kind: 'claim', ref: { namespace: 'ns', name: 'golden' }, pvc: golden },
    },
    {
      what: 'sourceRef to a DataSource referring to a snapshot DataSource (chain)',
      spec: { sourceRef: { kind: 'DataSource', name: 'latest-snap' } },
      want: { kind: 'snapshot', ref: { namespace: 'ns', name: 's' } },
    },
    {
      what: 'a chain deeper than one hop',
      spec: { sourceRef: { kind: 'DataSource', name: 'deeper' } },
      want: {
        kind: 'unresolved',
        message: 'DataSource reference chain exceeds maximum depth of 1',
      },
    },
    {
      what: 'a DataSource referring to a missing one',
      spec: { sourceRef: { kind: 'DataSource', name: 'dangling' } },
      want: { kind: 'unresolved', message: 'datasources.cdi.kubevirt.io "gone" not found' },
    },
    { what: 'an import', spec: { source: { http: { url: 'http://h/x' } } }, want: undefined },
  ])('$what', ({ spec, want }) => {
    expect(resolveCloneSource(dv(undefined, spec), lookups)).toEqual(want);
  });
});
