// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations, Labels } from '../../common/contract.js';
import type { DataImportCron, DataImportCronStatus } from '../../common/api/dataimportcron.js';
import type { DataSource, DataVolume } from '../../common/api/datavolume.js';
import type { DataVolumePhase } from '../../common/api/phases.js';
import type { CronAction, UpdateCronAction } from './actions.js';
import { decideCron, importName, isPollDue, untagged, type CronInput } from './decide.js';

const NOW = new Date('2026-12-07T10:15:30Z');
const D1 = `sha256:${'a1'.repeat(32)}`;
const D2 = `sha256:${'b2'.repeat(32)}`;
const N1 = 'fedora-a1a1a1a1a1a1';
const N2 = 'fedora-b2b2b2b2b2b2';

function cron(
  status?: DataImportCronStatus,
  annotations: Record<string, string> = {},
  spec: Partial<NonNullable<DataImportCron['spec']>> = {},
): DataImportCron {
  return {
    metadata: {
      name: 'fedora-cron',
      namespace: 'golden',
      uid: 'u1',
      resourceVersion: '7',
      annotations,
    },
    spec: {
      schedule: '* * * * *',
      managedDataSource: 'fedora',
      template: {
        spec: {
          source: { registry: { url: 'docker://reg:5000/os/fedora:latest' } },
          storage: { resources: { requests: { storage: '1Gi' } } },
        },
      },
      ...spec,
    },
    ...(status === undefined ? {} : { status }),
  };
}

const cronLabel = { [Labels.DataImportCron]: 'fedora-cron' };

function dv(name: string, phase: string, running?: { reason: string }): DataVolume {
  return {
    metadata: { name, namespace: 'golden', labels: cronLabel },
    status: {
      phase: phase as DataVolumePhase,
      ...(running === undefined
        ? {}
        : { conditions: [{ type: 'Running', status: 'False', reason: running.reason }] }),
    },
  };
}

function claim(name: string, lastUse?: string): V1PersistentVolumeClaim {
  return {
    metadata: {
      name,
      namespace: 'golden',
      labels: cronLabel,
      annotations: lastUse === undefined ? {} : { [Annotations.LastUseTime]: lastUse },
    },
    status: { phase: 'Bound' },
  };
}

const managedDs: DataSource = {
  metadata: { name: 'fedora', namespace: 'golden', labels: cronLabel },
  spec: { source: {} },
};

function input(over: Partial<CronInput>): CronInput {
  return {
    cron: cron(),
    now: NOW,
    dv: undefined,
    pvc: undefined,
    dataSource: managedDs,
    importClaims: [],
    ...over,
  };
}

function update(actions: CronAction[]): UpdateCronAction | undefined {
  return actions.find((a): a is UpdateCronAction => a.kind === 'updateCron');
}

function condition(actions: CronAction[], type: string): string {
  const c = update(actions)?.status.conditions?.find((x) => x.type === type);
  return c === undefined ? 'none' : `${c.status} ${c.reason ?? ''}: ${c.message ?? ''}`;
}

/** The actions other than the cron's own update, as short words. */
function effects(actions: CronAction[]): string[] {
  return actions.flatMap((a) => {
    switch (a.kind) {
      case 'createDataVolume':
        return [
          `create DV ${a.dv.metadata.name ?? ''} from ${a.dv.spec?.source?.registry?.url ?? ''}`,
        ];
      case 'deleteImport':
        return [`delete ${a.name}`];
      case 'createDataSource':
        return [`create DataSource ${a.ds.metadata.name ?? ''}`];
      case 'patchDataSource':
        return [`point DataSource at ${JSON.stringify(a.source?.['pvc'] ?? null)}`];
      case 'patchPvc':
        return [`mark ${a.name} used`];
      case 'event':
        return [`${a.type} ${a.reason}`];
      default:
        return [];
    }
  });
}

const importing = (name: string, digest: string): DataImportCronStatus => ({
  currentImports: [{ DataVolumeName: name, Digest: digest }],
});
const imported = (name: string, digest: string): DataImportCronStatus => ({
  ...importing(name, digest),
  lastImportedPVC: { namespace: 'golden', name },
});

describe('decideCron', () => {
  it.each<{
    what: string;
    in: Partial<CronInput>;
    effects: string[];
    upToDate: string;
    progressing: string;
  }>([
    {
      what: 'at creation the first poll imports the digest and creates the DataSource',
      in: { poll: { kind: 'digest', digest: D1 }, dataSource: undefined },
      effects: [
        'create DataSource fedora',
        `create DV ${N1} from docker://reg:5000/os/fedora@${D1}`,
      ],
      upToDate: 'False Outdated: Source digest updated since last import',
      progressing: 'False NoImport: No current import',
    },
    {
      what: 'import scheduled',
      in: {
        cron: cron(importing(N1, D1), { [Annotations.SourceDesiredDigest]: D1 }),
        dv: dv(N1, 'ImportScheduled'),
      },
      effects: [],
      upToDate: 'False ImportProgressing: Import is progressing',
      progressing: 'False ImportScheduled: Import is scheduled',
    },
    {
      what: 'import in progress',
      in: {
        cron: cron(importing(N1, D1), { [Annotations.SourceDesiredDigest]: D1 }),
        dv: dv(N1, 'ImportInProgress'),
      },
      effects: [],
      upToDate: 'False ImportProgressing: Import is progressing',
      progressing: 'True ImportProgressing: Import is progressing',
    },
    {
      what: 'import succeeded: the DataSource follows, the claim is marked newest',
      in: {
        cron: cron(importing(N1, D1), { [Annotations.SourceDesiredDigest]: D1 }),
        dv: dv(N1, 'Succeeded'),
        pvc: claim(N1),
        importClaims: [claim(N1)],
      },
      effects: [`mark ${N1} used`, `point DataSource at {"namespace":"golden","name":"${N1}"}`],
      upToDate: 'True UpToDate: Latest import is up to date',
      progressing: 'False NoImport: No current import',
    },
    {
      what: 'a new digest under the same tag is imported next to the good one',
      in: {
        cron: cron(imported(N1, D1), { [Annotations.SourceDesiredDigest]: D1 }),
        poll: { kind: 'digest', digest: D2 },
        dv: dv(N1, 'Succeeded'),
        pvc: claim(N1, '2026-12-07T10:00:00.000Z'),
        importClaims: [claim(N1, '2026-12-07T10:00:00.000Z')],
        dataSource: { ...managedDs, spec: { source: { pvc: { namespace: 'golden', name: N1 } } } },
      },
      effects: [`create DV ${N2} from docker://reg:5000/os/fedora@${D2}`],
      upToDate: 'False Outdated: Source digest updated since last import',
      progressing: 'False NoImport: No current import',
    },
    {
      what: 'a digest imported before is reused, never imported again',
      in: {
        cron: cron(imported(N2, D2), { [Annotations.SourceDesiredDigest]: D2 }),
        poll: { kind: 'digest', digest: D1 },
        dv: dv(N2, 'Succeeded'),
        pvc: claim(N2, '2026-12-07T10:10:00.000Z'),
        importClaims: [
          claim(N1, '2026-12-07T10:00:00.000Z'),
          claim(N2, '2026-12-07T10:10:00.000Z'),
        ],
        dataSource: { ...managedDs, spec: { source: { pvc: { namespace: 'golden', name: N2 } } } },
      },
      effects: [],
      upToDate: 'False Outdated: Source digest updated since last import',
      progressing: 'False NoImport: No current import',
    },
    {
      what: 'importsToKeep 1 deletes the older import, never the one in use',
      in: {
        cron: cron(
          importing(N2, D2),
          { [Annotations.SourceDesiredDigest]: D2 },
          { importsToKeep: 1 },
        ),
        dv: dv(N2, 'Succeeded'),
        pvc: claim(N2),
        importClaims: [claim(N1, '2026-12-07T10:00:00.000Z'), claim(N2)],
      },
      effects: [
        `mark ${N2} used`,
        `delete ${N1}`,
        `point DataSource at {"namespace":"golden","name":"${N2}"}`,
      ],
      upToDate: 'True UpToDate: Latest import is up to date',
      progressing: 'False NoImport: No current import',
    },
    {
      what: 'garbageCollect Never keeps every import',
      in: {
        cron: cron(
          importing(N2, D2),
          { [Annotations.SourceDesiredDigest]: D2 },
          { importsToKeep: 1, garbageCollect: 'Never' },
        ),
        dv: dv(N2, 'Succeeded'),
        pvc: claim(N2),
        importClaims: [claim(N1, '2026-12-07T10:00:00.000Z'), claim(N2)],
      },
      effects: [`mark ${N2} used`, `point DataSource at {"namespace":"golden","name":"${N2}"}`],
      upToDate: 'True UpToDate: Latest import is up to date',
      progressing: 'False NoImport: No current import',
    },
    {
      what: 'a poll failure keeps the good image and the DataSource, warns, and says so',
      in: {
        cron: cron(
          imported(N1, D1),
          { [Annotations.SourceDesiredDigest]: D1 },
          { importsToKeep: 1 },
        ),
        poll: {
          kind: 'failed',
          message: 'pinging container registry reg:5000: connect ECONNREFUSED',
        },
        dv: dv(N1, 'Succeeded'),
        pvc: claim(N1, '2026-12-07T10:00:00.000Z'),
        importClaims: [claim(N1, '2026-12-07T10:00:00.000Z')],
        dataSource: { ...managedDs, spec: { source: { pvc: { namespace: 'golden', name: N1 } } } },
      },
      effects: ['Warning PollFailed'],
      upToDate:
        'False PollFailed: Failed to poll the source digest of docker://reg:5000/os/fedora:latest: pinging container registry reg:5000: connect ECONNREFUSED',
      progressing: 'False NoImport: No current import',
    },
    {
      what: 'a failed import of a newer digest is replaced',
      in: {
        cron: cron(importing(N1, D1), { [Annotations.SourceDesiredDigest]: D1 }),
        poll: { kind: 'digest', digest: D2 },
        dv: dv(N1, 'ImportInProgress', { reason: 'Error' }),
      },
      effects: [`delete ${N1}`, `create DV ${N2} from docker://reg:5000/os/fedora@${D2}`],
      upToDate: 'False Outdated: Source digest updated since last import',
      progressing: 'True ImportProgressing: Import is progressing',
    },
    {
      what: 'no digest yet (the registry was down at creation)',
      in: { poll: { kind: 'failed', message: 'unauthorized: authentication required' } },
      effects: ['Warning PollFailed'],
      upToDate:
        'False PollFailed: Failed to poll the source digest of docker://reg:5000/os/fedora:latest: unauthorized: authentication required',
      progressing: 'False NoImport: No current import',
    },
  ])('$what', (row) => {
    const actions = decideCron(input(row.in));
    expect(effects(actions)).toEqual(row.effects);
    expect(condition(actions, 'UpToDate')).toBe(row.upToDate);
    expect(condition(actions, 'Progressing')).toBe(row.progressing);
  });

  it('records the poll: desired digest, last and next poll times, current import', () => {
    const u = update(decideCron(input({ poll: { kind: 'digest', digest: D1 } })));
    expect(u?.annotations).toEqual({
      [Annotations.NextCronTime]: '2026-12-07T10:16:00Z',
      [Annotations.LastCronTime]: '2026-12-07T10:15:30Z',
      [Annotations.SourceDesiredDigest]: D1,
    });
    expect(u?.resourceVersion).toBe('7');
    expect(u?.status.currentImports).toEqual([{ DataVolumeName: N1, Digest: D1 }]);
    expect(u?.status.lastExecutionTimestamp).toBe('2026-12-07T10:15:30Z');
  });

  it('the success sets lastImportedPVC, lastImportTimestamp and sourceFormat pvc', () => {
    const u = update(
      decideCron(
        input({
          cron: cron(importing(N1, D1), { [Annotations.SourceDesiredDigest]: D1 }),
          dv: dv(N1, 'Succeeded'),
          pvc: claim(N1),
        }),
      ),
    );
    expect(u?.status.lastImportedPVC).toEqual({ namespace: 'golden', name: N1 });
    expect(u?.status.lastImportTimestamp).toBe('2026-12-07T10:15:30Z');
    expect(u?.status.sourceFormat).toBe('pvc');
  });

  it.each([
    {
      what: 'no snapshot yet: takes one, UpToDate waits, the DataSource is not moved',
      snapshot: undefined,
      creates: true,
      upToDate: 'False ImportProgressing: Snapshot of imported data is progressing',
      pointsAt: undefined,
    },
    {
      what: 'snapshot not ready: waits for it',
      snapshot: { ready: false },
      creates: false,
      upToDate: 'False ImportProgressing: Snapshot of imported data is progressing',
      pointsAt: undefined,
    },
    {
      what: 'snapshot ready: the DataSource points at it, claim source removed',
      snapshot: { ready: true },
      creates: false,
      upToDate: 'True UpToDate: Latest import is up to date',
      pointsAt: { pvc: null, snapshot: { namespace: 'golden', name: N1 }, dataSource: null },
    },
  ])('snapshot source format, $what', ({ snapshot, creates, upToDate, pointsAt }) => {
    const actions = decideCron(
      input({
        cron: cron(importing(N1, D1), { [Annotations.SourceDesiredDigest]: D1 }),
        dv: dv(N1, 'Succeeded'),
        pvc: { ...claim(N1), metadata: { ...claim(N1).metadata, uid: 'pvc-uid' } },
        sourceFormat: 'snapshot',
        snapshot,
        snapshotClass: 'snapclass',
      }),
    );
    const snap = actions.find((a) => a.kind === 'createVolumeSnapshot');
    expect(snap !== undefined).toBe(creates);
    if (creates)
      expect(snap).toMatchObject({
        snapshot: {
          metadata: {
            name: N1,
            namespace: 'golden',
            ownerReferences: [{ kind: 'PersistentVolumeClaim', uid: 'pvc-uid' }],
          },
          spec: { source: { persistentVolumeClaimName: N1 }, volumeSnapshotClassName: 'snapclass' },
        },
      });
    expect(condition(actions, 'UpToDate')).toBe(upToDate);
    expect(update(actions)?.status.sourceFormat).toBe('snapshot');
    const patch = actions.find((a) => a.kind === 'patchDataSource');
    expect(patch?.source).toEqual(pointsAt);
  });

  it('a poll failure stands until the next poll', () => {
    const failed = input({
      cron: cron(imported(N1, D1), { [Annotations.SourceDesiredDigest]: D1 }),
      poll: { kind: 'failed', message: 'down' },
      dv: dv(N1, 'Succeeded'),
      pvc: claim(N1, 'x'),
      dataSource: { ...managedDs, spec: { source: { pvc: { namespace: 'golden', name: N1 } } } },
    });
    const first = update(decideCron(failed));
    const annotations = { ...failed.cron.metadata.annotations } as Record<string, string>;
    for (const [k, v] of Object.entries(first?.annotations ?? {}))
      if (v !== null) annotations[k] = v;
    const after = {
      ...failed.cron,
      metadata: { ...failed.cron.metadata, annotations },
      status: first?.status ?? {},
    };
    // Nothing changes until the next poll: no update at all.
    expect(decideCron({ ...failed, cron: after, poll: undefined })).toEqual([]);
    const recovered = decideCron({ ...failed, cron: after, poll: { kind: 'digest', digest: D1 } });
    expect(condition(recovered, 'UpToDate')).toBe('True UpToDate: Latest import is up to date');
  });

  it('a DataSource managed by another cron is left alone, with CDI’s warning', () => {
    const actions = decideCron(
      input({ managedByOther: 'other-cron', poll: { kind: 'digest', digest: D1 } }),
    );
    expect(actions).toEqual([
      expect.objectContaining({
        kind: 'event',
        reason: 'ErrDataSourceAlreadyManaged',
        message: 'DataSource fedora is already managed by DataImportCron other-cron',
      }),
    ]);
  });

  it('an invalid schedule is reported, and nothing is polled', () => {
    const c = cron(undefined, {}, { schedule: '61 * * * *' });
    const actions = decideCron(input({ cron: c }));
    expect(condition(actions, 'UpToDate')).toBe(
      'False InvalidSchedule: invalid cron schedule "61 * * * *": minute 61 is out of range 0-59',
    );
  });
});

describe('isPollDue', () => {
  it.each([
    { what: 'never polled', ann: {}, due: true },
    {
      what: 'next poll later',
      ann: { [Annotations.NextCronTime]: '2026-12-07T10:16:00Z' },
      due: false,
    },
    {
      what: 'next poll passed',
      ann: { [Annotations.NextCronTime]: '2026-12-07T10:15:00Z' },
      due: true,
    },
  ])('$what', ({ ann, due }) => {
    expect(isPollDue(cron(undefined, ann), NOW)).toBe(due);
  });

  it('not without a schedule', () => {
    expect(isPollDue(cron(undefined, {}, { schedule: '' }), NOW)).toBe(false);
  });
});

describe('names', () => {
  it.each([
    { url: 'docker://reg:5000/os/fedora:latest', want: 'docker://reg:5000/os/fedora' },
    { url: 'docker://reg:5000/os/fedora', want: 'docker://reg:5000/os/fedora' },
    {
      url: 'docker://quay.io/containerdisks/fedora:40',
      want: 'docker://quay.io/containerdisks/fedora',
    },
    { url: `docker://reg:5000/os/fedora@${D1}`, want: 'docker://reg:5000/os/fedora' },
  ])('untagged($url)', ({ url, want }) => {
    expect(untagged(url)).toBe(want);
  });

  it('imports are named after the DataSource and 12 hex digits of the digest', () => {
    expect(importName('fedora', D1)).toBe(N1);
    expect(importName('fedora', 'md5:abc')).toBeUndefined();
  });
});
