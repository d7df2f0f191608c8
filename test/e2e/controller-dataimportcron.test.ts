// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: a DataImportCron in the sandbox against Debian's docker-registry. It imports the
 * tag's digest at creation and points its DataSource at the import; a new digest pushed under the
 * same tag is imported at the next scheduled poll (every minute), the older import is deleted
 * (`importsToKeep: 1`) and the DataSource follows; a DataVolume with `sourceRef` to the
 * DataSource holds the pushed disk; a poll against a stopped registry is reported and deletes
 * nothing. Every disk is compared with `qemu-img convert -O raw` of the pushed image.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import type { DataImportCron } from '../../common/api/dataimportcron.js';
import type { DataSource } from '../../common/api/datavolume.js';
import { makeQcow2Disk, makeTempDir } from '../fixtures/index.js';
import {
  pushContainerDisk,
  startRegistry,
  type RegistryServer,
} from '../helpers/registry-server.js';
import { kubectl, waitForDeletion, waitForObject } from '../sandbox/testing.js';
import {
  apply,
  sameDisk,
  startControllerEnv,
  volumeData,
  waitForPhase,
  type ControllerEnv,
} from './controller-harness.js';

const MIB = 1024 * 1024;
/** A schedule of every minute: the next poll is at most a minute away, plus the import. */
const NEXT_POLL_TIMEOUT_MS = 120_000;
const TARGET = 'os/fedora:latest';

let env: ControllerEnv;
let registry: RegistryServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
/** Per pushed version: the qcow2 pushed and its raw reference. */
const versions: { qcow2: string; rawRef: string }[] = [];

async function makeVersion(i: number): Promise<void> {
  const { qcow2, reference } = await makeQcow2Disk(tmp.dir, `v${i}`, 16 * MIB, [
    { offset: 0, length: MIB, seed: 20 + i },
    { offset: (5 + i) * MIB, length: 2 * MIB, seed: 30 + i },
  ]);
  versions.push({ qcow2, rawRef: reference });
}

function importName(digest: string): string {
  return `fedora-${digest.slice('sha256:'.length, 'sha256:'.length + 12)}`;
}

function waitForCron(
  predicate: (c: DataImportCron) => boolean,
  timeoutMs = 60_000,
): Promise<DataImportCron> {
  return waitForObject<KubernetesObject>(env.kc, {
    path: '/apis/cdi.kubevirt.io/v1beta1/namespaces/default/dataimportcrons',
    name: 'fedora-cron',
    until: (o) => predicate(o as DataImportCron),
    timeoutMs,
  }) as Promise<DataImportCron>;
}

function waitForDataSource(
  predicate: (ds: DataSource) => boolean,
  timeoutMs = 60_000,
): Promise<DataSource> {
  return waitForObject<KubernetesObject>(env.kc, {
    path: '/apis/cdi.kubevirt.io/v1beta1/namespaces/default/datasources',
    name: 'fedora',
    until: (o) => predicate(o as DataSource),
    timeoutMs,
  }) as Promise<DataSource>;
}

function condition(c: DataImportCron, type: string): string {
  const x = c.status?.conditions?.find((k) => k.type === type);
  return x === undefined ? '' : `${x.status} ${x.reason ?? ''}`;
}

async function exists(kind: string, name: string): Promise<boolean> {
  const r = await kubectl(env.sandbox, ['get', kind, name, '-n', 'default', '-o', 'name']);
  return r.code === 0;
}

let digests: string[] = [];

beforeAll(async () => {
  tmp = await makeTempDir('cdi-e2e-cron-');
  await makeVersion(1);
  await makeVersion(2);
  registry = await startRegistry();
  digests = [
    await pushContainerDisk({
      registry,
      target: TARGET,
      diskFile: versions[0]?.qcow2 ?? '',
      diskName: 'disk.qcow2',
      workDir: tmp.dir,
    }),
  ];
  env = await startControllerEnv();
  const patch = JSON.stringify({ spec: { insecureRegistries: [registry.host] } });
  const r = await kubectl(env.sandbox, [
    'patch',
    'cdiconfig',
    'config',
    '--type=merge',
    '-p',
    patch,
  ]);
  if (r.code !== 0) throw new Error(r.stderr);
  // A fresh start lists the CDIConfig with the plain-HTTP registry allowed before any poll.
  await env.stopController();
  await env.startController();
});

afterAll(async () => {
  await env?.stop();
  await registry?.close();
  await tmp?.cleanup();
});

describe('DataImportCron', () => {
  it('imports the tag at creation and points its DataSource at the import', async () => {
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataImportCron
metadata:
  name: fedora-cron
spec:
  schedule: '* * * * *'
  managedDataSource: fedora
  importsToKeep: 1
  template:
    spec:
      source:
        registry:
          url: docker://${registry.host}/${TARGET}
      storage:
        resources:
          requests:
            storage: 64Mi
`,
    );
    const first = importName(digests[0] ?? '');
    const cron = await waitForCron((c) => condition(c, 'UpToDate') === 'True UpToDate');
    expect(cron.metadata.annotations?.[Annotations.SourceDesiredDigest]).toBe(digests[0]);
    expect(cron.status?.lastImportedPVC).toEqual({ namespace: 'default', name: first });
    expect(cron.status?.currentImports).toEqual([{ DataVolumeName: first, Digest: digests[0] }]);
    expect(cron.status?.sourceFormat).toBe('pvc');
    expect(cron.status?.lastExecutionTimestamp).toBeTruthy();
    expect(cron.status?.lastImportTimestamp).toBeTruthy();
    const ds = await waitForDataSource(
      (d) => d.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
    );
    expect(ds.spec?.source?.pvc).toEqual({ namespace: 'default', name: first });
    expect(await sameDisk(versions[0]?.rawRef ?? '', await volumeData(env, 'default', first))).toBe(
      true,
    );
  });

  it('imports a new digest of the tag at the next schedule, deletes the older one, and the DataSource follows', async () => {
    digests.push(
      await pushContainerDisk({
        registry,
        target: TARGET,
        diskFile: versions[1]?.qcow2 ?? '',
        diskName: 'disk.qcow2',
        workDir: tmp.dir,
      }),
    );
    expect(digests[1]).not.toBe(digests[0]);
    const second = importName(digests[1] ?? '');
    const cron = await waitForCron(
      (c) =>
        c.status?.lastImportedPVC?.name === second && condition(c, 'UpToDate') === 'True UpToDate',
      NEXT_POLL_TIMEOUT_MS,
    );
    expect(cron.metadata.annotations?.[Annotations.SourceDesiredDigest]).toBe(digests[1]);
    await waitForDataSource((d) => d.spec?.source?.pvc?.name === second);
    expect(
      await sameDisk(versions[1]?.rawRef ?? '', await volumeData(env, 'default', second)),
    ).toBe(true);
    // importsToKeep: 1: the first import's DataVolume goes, and its claim with it.
    const first = importName(digests[0] ?? '');
    await waitForDeletion(env.kc, '/apis/cdi.kubevirt.io/v1beta1/namespaces/default/datavolumes', {
      apiVersion: 'cdi.kubevirt.io/v1beta1',
      kind: 'DataVolume',
      name: first,
      namespace: 'default',
    });
    await waitForDeletion(env.kc, '/api/v1/namespaces/default/persistentvolumeclaims', {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      name: first,
      namespace: 'default',
    });
  });

  it('a DataVolume with sourceRef to the DataSource holds the newest pushed disk', async () => {
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: vm-root
spec:
  sourceRef:
    kind: DataSource
    name: fedora
  storage: {}
`,
    );
    await waitForPhase(env, 'default', 'vm-root', 'Succeeded', 120_000);
    expect(
      await sameDisk(versions[1]?.rawRef ?? '', await volumeData(env, 'default', 'vm-root')),
    ).toBe(true);
  });

  it('a poll failure is reported at the next schedule and keeps the good image', async () => {
    await registry.close();
    const cron = await waitForCron(
      (c) => condition(c, 'UpToDate') === 'False PollFailed',
      NEXT_POLL_TIMEOUT_MS,
    );
    const second = importName(digests[1] ?? '');
    expect(cron.status?.lastImportedPVC?.name).toBe(second);
    expect(await exists('pvc', second)).toBe(true);
    const ds = await waitForDataSource(() => true);
    expect(ds.spec?.source?.pvc?.name).toBe(second);
    const events = await kubectl(env.sandbox, ['get', 'events', '-n', 'default', '-o', 'json']);
    const items = (JSON.parse(events.stdout) as { items: { reason?: string; type?: string }[] })
      .items;
    expect(items.some((e) => e.reason === 'PollFailed' && e.type === 'Warning')).toBe(true);
  });
});
