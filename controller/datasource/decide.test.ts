// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import type { DataSource } from '../../common/api/datavolume.js';
import type { UpdateDataSourceStatusAction } from '../actions.js';
import { decideDataSource } from './decide.js';

const NOW = '2026-11-22T00:00:00Z';
const LATER = '2026-11-22T00:05:00Z';
const PVC_SOURCE = { pvc: { namespace: 'ns', name: 'golden' } };

function ds(
  source: DataSource['spec'] = { source: PVC_SOURCE },
  status?: DataSource['status'],
): DataSource {
  return {
    metadata: { name: 'fedora', namespace: 'ns' },
    spec: source,
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

describe('decideDataSource', () => {
  it.each([
    {
      what: 'claim bound and not filled by CDI',
      pvc: claim(),
      want: 'Ready=True Ready: DataSource is ready to be consumed',
    },
    {
      what: 'claim imported',
      pvc: claim({ [Annotations.Endpoint]: 'http://h/x', [Annotations.PodPhase]: 'Succeeded' }),
      want: 'Ready=True Ready: DataSource is ready to be consumed',
    },
    {
      what: 'claim still importing',
      pvc: claim({ [Annotations.Endpoint]: 'http://h/x', [Annotations.PodPhase]: 'Running' }),
      want: 'Ready=False ImportInProgress: Import DataVolume phase ImportInProgress',
    },
    { what: 'claim missing', pvc: undefined, want: 'Ready=False NotFound: PVC not found' },
  ])('$what', ({ pvc, want }) => {
    const actions = decideDataSource({ ds: ds(), pvc, now: NOW });
    expect(ready(actions)).toBe(want);
    expect((actions[0] as UpdateDataSourceStatusAction).status.source).toEqual(PVC_SOURCE);
  });

  it('a snapshot source is not served', () => {
    const actions = decideDataSource({
      ds: ds({ source: { snapshot: { namespace: 'ns', name: 's' } } }),
      pvc: undefined,
      now: NOW,
    });
    expect(ready(actions)).toBe('Ready=False NoSource: No source PVC set');
  });

  it('writes nothing when nothing changed, keeping the timestamps', () => {
    const first = decideDataSource({ ds: ds(), pvc: claim(), now: NOW });
    const status = (first[0] as UpdateDataSourceStatusAction).status;
    expect(decideDataSource({ ds: ds(undefined, status), pvc: claim(), now: LATER })).toEqual([]);
  });
});
