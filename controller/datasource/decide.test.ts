// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import type { DataSource, DataSourceSource } from '../../common/api/datavolume.js';
import type { UpdateDataSourceStatusAction } from '../actions.js';
import { decideDataSource, type SnapshotView } from './decide.js';

const NOW = '2026-11-22T00:00:00Z';
const LATER = '2026-11-22T00:05:00Z';
const PVC_SOURCE = { pvc: { namespace: 'ns', name: 'golden' } };
const SNAP_SOURCE = { snapshot: { namespace: 'ns', name: 'golden-snap' } };

function ds(
  source: DataSourceSource = PVC_SOURCE,
  name = 'fedora',
  status?: DataSource['status'],
): DataSource {
  return {
    metadata: { name, namespace: 'ns' },
    spec: { source },
    ...(status === undefined ? {} : { status }),
  };
}

function claim(annotations: Record<string, string> = {}, phase = 'Bound'): V1PersistentVolumeClaim {
  return { metadata: { name: 'golden', namespace: 'ns', annotations }, status: { phase } };
}

function ready(actions: ReturnType<typeof decideDataSource>): string {
  const a = actions[0] as UpdateDataSourceStatusAction | undefined;
  const c = a?.status.conditions?.[0];
  return c === undefined
    ? 'no update'
    : `${c.type}=${c.status} ${c.reason ?? ''}: ${c.message ?? ''}`;
}

/** What the API server stores from the merge patch: null members are removed. */
function stored(actions: ReturnType<typeof decideDataSource>): DataSource['status'] {
  const status = (actions[0] as UpdateDataSourceStatusAction).status;
  return JSON.parse(JSON.stringify(status), (_k, v: unknown) =>
    v === null ? undefined : v,
  ) as DataSource['status'];
}

const importing = claim({
  [Annotations.Endpoint]: 'http://h/x',
  [Annotations.PodPhase]: 'Running',
});

describe('decideDataSource', () => {
  it.each<{
    what: string;
    source: DataSourceSource;
    referenced?: DataSource;
    pvc?: V1PersistentVolumeClaim;
    snapshot?: SnapshotView;
    want: string;
    shown: DataSourceSource;
  }>([
    {
      what: 'pvc: claim bound and not filled by CDI',
      source: PVC_SOURCE,
      pvc: claim(),
      want: 'Ready=True Ready: DataSource is ready to be consumed',
      shown: PVC_SOURCE,
    },
    {
      what: 'pvc: claim imported',
      source: PVC_SOURCE,
      pvc: claim({ [Annotations.Endpoint]: 'http://h/x', [Annotations.PodPhase]: 'Succeeded' }),
      want: 'Ready=True Ready: DataSource is ready to be consumed',
      shown: PVC_SOURCE,
    },
    {
      what: 'pvc: claim still importing',
      source: PVC_SOURCE,
      pvc: importing,
      want: 'Ready=False ImportInProgress: Import DataVolume phase ImportInProgress',
      shown: {},
    },
    {
      what: 'pvc: claim missing',
      source: PVC_SOURCE,
      want: 'Ready=False NotFound: PVC not found',
      shown: {},
    },
    {
      what: 'snapshot: ready to use',
      source: SNAP_SOURCE,
      snapshot: { status: { readyToUse: true } },
      want: 'Ready=True Ready: DataSource is ready to be consumed',
      shown: SNAP_SOURCE,
    },
    {
      what: 'snapshot: not ready yet',
      source: SNAP_SOURCE,
      snapshot: { status: { readyToUse: false } },
      want: 'Ready=False SnapshotNotReady: Snapshot phase is not ready',
      shown: {},
    },
    {
      what: 'snapshot: missing (or no snapshot API)',
      source: SNAP_SOURCE,
      want: 'Ready=False NotFound: Snapshot not found',
      shown: {},
    },
    {
      what: 'no source at all',
      source: {},
      want: 'Ready=False NoSource: No source PVC set',
      shown: {},
    },
    {
      what: 'dataSource: follows a ready pvc DataSource, showing its source',
      source: { dataSource: { name: 'base' } },
      referenced: ds(PVC_SOURCE, 'base'),
      pvc: claim(),
      want: 'Ready=True Ready: DataSource is ready to be consumed',
      shown: PVC_SOURCE,
    },
    {
      what: 'dataSource: follows a snapshot DataSource',
      source: { dataSource: { namespace: 'ns', name: 'base' } },
      referenced: ds(SNAP_SOURCE, 'base'),
      snapshot: { status: { readyToUse: true } },
      want: 'Ready=True Ready: DataSource is ready to be consumed',
      shown: SNAP_SOURCE,
    },
    {
      what: 'dataSource: the referred claim is still importing',
      source: { dataSource: { name: 'base' } },
      referenced: ds(PVC_SOURCE, 'base'),
      pvc: importing,
      want: 'Ready=False ImportInProgress: Import DataVolume phase ImportInProgress',
      shown: {},
    },
    {
      what: 'dataSource: missing',
      source: { dataSource: { name: 'base' } },
      want: 'Ready=False NotFound: datasources.cdi.kubevirt.io "base" not found',
      shown: {},
    },
    {
      what: 'dataSource: another namespace',
      source: { dataSource: { namespace: 'other', name: 'base' } },
      want: 'Ready=False CrossNamespaceReference: DataSource cannot reference a DataSource in another namespace',
      shown: {},
    },
    {
      what: 'dataSource: itself',
      source: { dataSource: { name: 'fedora' } },
      want: 'Ready=False SelfReference: DataSource cannot self-reference',
      shown: {},
    },
    {
      what: 'dataSource: two hops',
      source: { dataSource: { name: 'middle' } },
      referenced: ds({ dataSource: { name: 'base' } }, 'middle'),
      want: 'Ready=False MaxReferenceDepthReached: DataSource reference chain exceeds maximum depth of 1',
      shown: {},
    },
  ])('$what', ({ source, referenced, pvc, snapshot, want, shown }) => {
    const actions = decideDataSource({ ds: ds(source), referenced, pvc, snapshot, now: NOW });
    expect(ready(actions)).toBe(want);
    expect(stored(actions)?.source).toEqual(shown);
  });

  it('clears the source members it no longer shows (merge patch)', () => {
    const old = { source: PVC_SOURCE, conditions: [] };
    const actions = decideDataSource({
      ds: ds(PVC_SOURCE, 'fedora', old),
      pvc: undefined,
      now: NOW,
    });
    expect((actions[0] as UpdateDataSourceStatusAction).status.source).toEqual({
      pvc: null,
      snapshot: null,
      dataSource: null,
    });
  });

  it('writes nothing when nothing changed, keeping the timestamps', () => {
    const first = decideDataSource({ ds: ds(), pvc: claim(), now: NOW });
    const again = decideDataSource({
      ds: ds(PVC_SOURCE, 'fedora', stored(first)),
      pvc: claim(),
      now: LATER,
    });
    expect(again).toEqual([]);
  });
});
