// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import type { CdiConfig } from '../../common/api/datavolume.js';
import {
  CDI_FINALIZER,
  CONFIG_AUTHORITY_ANNOTATION,
  activeCdi,
  decideCdi,
  sameJson,
  uninstallBlockedMessage,
  type CdiInput,
} from './decide.js';
import type { Cdi } from './types.js';

const NOW = '2026-01-01T00:00:00Z';

const BLOCK = { uninstallStrategy: 'BlockUninstallIfWorkloadsExist' };

function cdi(over: Partial<Cdi['metadata']> = {}, spec: Cdi['spec'] = BLOCK): Cdi {
  return {
    metadata: {
      name: 'cdi',
      resourceVersion: '7',
      annotations: { [CONFIG_AUTHORITY_ANNOTATION]: '' },
      finalizers: [CDI_FINALIZER],
      ...over,
    },
    spec,
  };
}

function config(spec: CdiConfig['spec']): CdiConfig {
  return { metadata: { name: 'config' }, ...(spec === undefined ? {} : { spec }) };
}

function input(over: Partial<CdiInput>): CdiInput {
  return { cdi: cdi(), config: config({}), dataVolumes: 0, notReady: undefined, now: NOW, ...over };
}

describe('decideCdi', () => {
  it('takes authority, adds the finalizer and adopts an existing CDIConfig spec', () => {
    const d = decideCdi(
      input({
        cdi: cdi({ annotations: {}, finalizers: [] }),
        config: config({ uploadProxyURLOverride: 'https://up' }),
      }),
    );
    expect(d.patch).toEqual({
      metadata: {
        finalizers: [CDI_FINALIZER],
        annotations: { [CONFIG_AUTHORITY_ANNOTATION]: '' },
        resourceVersion: '7',
      },
      spec: { config: { uploadProxyURLOverride: 'https://up' } },
    });
    expect(d.configSpec).toBeUndefined();
  });

  it('keeps its own spec.config when taking authority', () => {
    const d = decideCdi(
      input({
        cdi: cdi({ annotations: {} }, { ...BLOCK, config: { preallocation: true } }),
        config: config({ uploadProxyURLOverride: 'https://up' }),
      }),
    );
    expect(d.patch).toEqual({
      metadata: { annotations: { [CONFIG_AUTHORITY_ANNOTATION]: '' }, resourceVersion: '7' },
    });
  });

  it.each([
    {
      what: 'spec.config differs: copied',
      spec: { config: { featureGates: [] as string[], uploadProxyURLOverride: 'x' } },
      current: { uploadProxyURLOverride: 'y' },
      want: { featureGates: [], uploadProxyURLOverride: 'x' },
    },
    {
      what: 'no spec.config: the CDIConfig spec is emptied',
      spec: {},
      current: { preallocation: true },
      want: {},
    },
    {
      what: 'same in another key order: nothing',
      spec: { config: { preallocation: true, scratchSpaceStorageClass: 's' } },
      current: { scratchSpaceStorageClass: 's', preallocation: true },
      want: undefined,
    },
  ])('as the authority: $what', ({ spec, current, want }) => {
    const d = decideCdi(input({ cdi: cdi({}, { ...BLOCK, ...spec }), config: config(current) }));
    expect(d.configSpec).toEqual(want);
    expect(d.patch).toBeUndefined();
  });

  it.each([
    { what: 'RemoveWorkloads drops it', strategy: 'RemoveWorkloads', has: true, want: [] },
    { what: 'no strategy adds none', strategy: undefined, has: false, want: undefined },
    { what: 'Block adds it', strategy: BLOCK.uninstallStrategy, has: false, want: [CDI_FINALIZER] },
  ])('finalizer: $what', ({ strategy, has, want }) => {
    const d = decideCdi(
      input({
        cdi: cdi(
          { finalizers: has ? [CDI_FINALIZER] : [] },
          strategy === undefined ? {} : { uninstallStrategy: strategy },
        ),
      }),
    );
    const patched = (d.patch?.['metadata'] as { finalizers?: string[] } | undefined)?.finalizers;
    expect(patched).toEqual(want);
  });

  it('reports Deployed with healthy conditions, and nothing once it does', () => {
    const first = decideCdi(input({}));
    expect(first.status?.phase).toBe('Deployed');
    expect(first.status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Available', 'True', 'DeployCompleted'],
      ['Progressing', 'False', 'DeployCompleted'],
      ['Degraded', 'False', 'DeployCompleted'],
    ]);
    const again = decideCdi(
      input({ cdi: { ...cdi(), status: first.status ?? {} }, now: '2026-02-02T00:00:00Z' }),
    );
    expect(again.status).toBeUndefined();
  });

  it('reports progress while the controller is not ready, keeping unchanged transition times', () => {
    const healthy = decideCdi(input({})).status ?? {};
    const d = decideCdi(
      input({ cdi: { ...cdi(), status: healthy }, notReady: 'caches not synced', now: 'later' }),
    );
    const byType = Object.fromEntries((d.status?.conditions ?? []).map((c) => [c.type, c]));
    expect(byType['Available']).toMatchObject({ status: 'False', lastTransitionTime: 'later' });
    expect(byType['Progressing']?.message).toBe('Started Deployment: caches not synced');
    expect(byType['Degraded']).toMatchObject({ status: 'False', lastTransitionTime: NOW });
  });

  it.each([
    {
      what: 'RemoveWorkloads with DataVolumes: released',
      strategy: 'RemoveWorkloads',
      dvs: 2,
      blocked: false,
    },
    {
      what: 'Block without DataVolumes: released',
      strategy: 'BlockUninstallIfWorkloadsExist',
      dvs: 0,
      blocked: false,
    },
    {
      what: 'Block with DataVolumes: held',
      strategy: 'BlockUninstallIfWorkloadsExist',
      dvs: 3,
      blocked: true,
    },
    { what: 'no strategy: released', strategy: undefined, dvs: 3, blocked: false },
  ])('deletion, $what', ({ strategy, dvs, blocked }) => {
    const d = decideCdi(
      input({
        cdi: cdi(
          { deletionTimestamp: NOW, finalizers: ['other', CDI_FINALIZER] },
          strategy === undefined ? {} : { uninstallStrategy: strategy },
        ),
        dataVolumes: dvs,
      }),
    );
    expect(d.status?.phase).toBe('Deleting');
    if (blocked) {
      expect(d.blocked).toBe(uninstallBlockedMessage(3));
      expect(d.blocked).toMatch(/since there are still 3 DataVolumes present/);
      expect(d.patch).toBeUndefined();
      expect(d.status?.conditions?.find((c) => c.type === 'Degraded')?.status).toBe('True');
    } else {
      expect(d.blocked).toBeUndefined();
      expect(d.patch).toEqual({ metadata: { finalizers: ['other'], resourceVersion: '7' } });
    }
    expect(d.configSpec).toBeUndefined();
  });
});

describe('activeCdi', () => {
  const live = cdi();
  const gone = cdi({ name: 'old', deletionTimestamp: NOW });
  it.each([
    { what: 'none', all: [], want: undefined },
    { what: 'one', all: [live], want: live },
    { what: 'one live beside a deleted one', all: [gone, live], want: live },
    { what: 'only a deleted one', all: [gone], want: gone },
    { what: 'two live', all: [live, cdi({ name: 'b' })], want: undefined },
  ])('$what', ({ all, want }) => {
    expect(activeCdi(all)).toBe(want);
  });
});

describe('sameJson', () => {
  it('ignores key order and undefined members, not array order', () => {
    expect(sameJson({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1, d: undefined })).toBe(
      true,
    );
    expect(sameJson({ c: [1, 2] }, { c: [2, 1] })).toBe(false);
  });
});
