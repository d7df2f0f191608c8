// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: a DataImportCron whose StorageProfile says `dataImportCronSourceFormat: snapshot`
 * imports the tag from Debian's docker-registry, takes a VolumeSnapshot of the import and points
 * its DataSource at the snapshot once it is ready; a DataVolume with `sourceRef` to that
 * DataSource is restored from the snapshot and holds the pushed disk (compared with
 * `qemu-img convert -O raw` of the pushed image).
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataImportCron } from '../../common/api/dataimportcron.js';
import type { DataSource } from '../../common/api/datavolume.js';
import { makeQcow2Disk, makeTempDir } from '../fixtures/index.js';
import {
  pushContainerDisk,
  startRegistry,
  type RegistryServer,
} from '../helpers/registry-server.js';
import { kubectl, waitForObject } from '../sandbox/testing.js';
import {
  apply,
  startControllerEnv,
  type ControllerEnv,
  succeededWithDisk,
} from './controller-harness.js';

const MIB = 1024 * 1024;
const TARGET = 'os/centos:latest';
const DRIVER = 'sandbox.cdi.kubevirt.io/hostpath';

let env: ControllerEnv;
let registry: RegistryServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let rawRef: string;
let digest: string;

async function mustKubectl(args: string[]): Promise<void> {
  const r = await kubectl(env.sandbox, args);
  if (r.code !== 0) throw new Error(r.stderr);
}

beforeAll(async () => {
  tmp = await makeTempDir('cdi-e2e-cron-snap-');
  const { qcow2, reference } = await makeQcow2Disk(tmp.dir, 'v', 16 * MIB, [
    { offset: 0, length: MIB, seed: 41 },
    { offset: 6 * MIB, length: 2 * MIB, seed: 42 },
  ]);
  rawRef = reference;
  registry = await startRegistry();
  digest = await pushContainerDisk({
    registry,
    target: TARGET,
    diskFile: qcow2,
    diskName: 'disk.qcow2',
    workDir: tmp.dir,
  });
  env = await startControllerEnv();
  await mustKubectl([
    ...['patch', 'cdiconfig', 'config', '--type=merge'],
    ...['-p', JSON.stringify({ spec: { insecureRegistries: [registry.host] } })],
  ]);
  await apply(
    env,
    `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: golden-images
provisioner: ${DRIVER}
reclaimPolicy: Delete
volumeBindingMode: Immediate
---
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: hostpath-snapclass
  annotations:
    snapshot.storage.kubernetes.io/is-default-class: 'true'
driver: ${DRIVER}
deletionPolicy: Delete
`,
  );
  const profiles = '/apis/cdi.kubevirt.io/v1beta1/storageprofiles';
  await waitForObject<KubernetesObject>(env.kc, {
    path: profiles,
    name: 'golden-images',
    until: () => true,
  });
  await mustKubectl([
    ...['patch', 'storageprofile', 'golden-images', '--type', 'merge'],
    ...['-p', JSON.stringify({ spec: { dataImportCronSourceFormat: 'snapshot' } })],
  ]);
  await waitForObject<KubernetesObject & { status?: { dataImportCronSourceFormat?: string } }>(
    env.kc,
    {
      path: profiles,
      name: 'golden-images',
      until: (p) => p.status?.dataImportCronSourceFormat === 'snapshot',
    },
  );
  // A fresh start lists the CDIConfig with the plain-HTTP registry allowed before any poll.
  await env.stopController();
  await env.startController();
});

afterAll(async () => {
  await env?.stop();
  await registry?.close();
  await tmp?.cleanup();
});

describe('DataImportCron with the snapshot source format', () => {
  it('points its DataSource at a snapshot of the import, and a clone of it holds the disk', async () => {
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataImportCron
metadata:
  name: centos-cron
spec:
  schedule: '0 0 * * *'
  managedDataSource: centos
  template:
    spec:
      source:
        registry:
          url: docker://${registry.host}/${TARGET}
      storage:
        storageClassName: golden-images
        resources:
          requests:
            storage: 32Mi
`,
    );
    const name = `centos-${digest.slice('sha256:'.length, 'sha256:'.length + 12)}`;
    const cron = (await waitForObject<KubernetesObject>(env.kc, {
      path: '/apis/cdi.kubevirt.io/v1beta1/namespaces/default/dataimportcrons',
      name: 'centos-cron',
      until: (o) =>
        (o as DataImportCron).status?.conditions?.some(
          (c) => c.type === 'UpToDate' && c.status === 'True',
        ) === true,
      timeoutMs: 90_000,
    })) as DataImportCron;
    expect(cron.status?.sourceFormat).toBe('snapshot');
    const snapshot = await waitForObject<KubernetesObject & { status?: { readyToUse?: boolean } }>(
      env.kc,
      {
        path: '/apis/snapshot.storage.k8s.io/v1/namespaces/default/volumesnapshots',
        name,
        until: (s) => s.status?.readyToUse === true,
      },
    );
    expect(snapshot.metadata?.ownerReferences?.[0]?.kind).toBe('PersistentVolumeClaim');
    const ds = (await waitForObject<KubernetesObject>(env.kc, {
      path: '/apis/cdi.kubevirt.io/v1beta1/namespaces/default/datasources',
      name: 'centos',
      until: (o) =>
        (o as DataSource).status?.conditions?.some(
          (c) => c.type === 'Ready' && c.status === 'True',
        ) === true,
    })) as DataSource;
    expect(ds.spec?.source?.snapshot).toEqual({ namespace: 'default', name });
    expect(ds.spec?.source?.pvc).toBeUndefined();
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: vm-disk
spec:
  sourceRef:
    kind: DataSource
    name: centos
  storage:
    storageClassName: golden-images
`,
    );
    expect(await succeededWithDisk(env, 'default', 'vm-disk', rawRef)).toBe(true);
  });
});
