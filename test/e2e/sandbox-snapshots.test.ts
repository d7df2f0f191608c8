// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox's snapshot API and driver: a VolumeSnapshot is a point-in-time copy of its claim's
 * volume (later writes to the claim do not reach it), a claim with a VolumeSnapshot or claim
 * `dataSource` starts from that data (a larger Block volume keeps it and is grown; a smaller
 * request is refused), a bound claim grows when its class allows expansion, and a deleted
 * snapshot takes its content along.
 */
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  type V1PersistentVolumeClaim,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubeConfigFor, kubectl, waitForDeletion, waitForObject } from '../sandbox/testing.js';

let sandbox: Sandbox;
let kc: KubeConfig;
let core: CoreV1Api;
let custom: CustomObjectsApi;
const NS = 'default';
const PVCS = `/api/v1/namespaces/${NS}/persistentvolumeclaims`;
const SNAPSHOTS = `/apis/snapshot.storage.k8s.io/v1/namespaces/${NS}/volumesnapshots`;
const MIB = 1024 * 1024;

interface Snapshot extends KubernetesObject {
  status?: { readyToUse?: boolean; restoreSize?: string; boundVolumeSnapshotContentName?: string };
}

beforeAll(async () => {
  sandbox = await startSandbox();
  kc = kubeConfigFor(sandbox);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
  const applied = await kubectl(sandbox, ['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'snapshot.storage.k8s.io/v1',
          kind: 'VolumeSnapshotClass',
          metadata: {
            name: 'hostpath-snapclass',
            annotations: { 'snapshot.storage.kubernetes.io/is-default-class': 'true' },
          },
          driver: 'sandbox.cdi.kubevirt.io/hostpath',
          deletionPolicy: 'Delete',
        },
        {
          apiVersion: 'storage.k8s.io/v1',
          kind: 'StorageClass',
          metadata: { name: 'expandable' },
          provisioner: 'sandbox.cdi.kubevirt.io/hostpath',
          reclaimPolicy: 'Delete',
          volumeBindingMode: 'Immediate',
          allowVolumeExpansion: true,
        },
      ],
    }),
  });
  expect(applied.stderr).toBe('');
});

afterAll(async () => {
  await sandbox.stop();
});

function claim(
  name: string,
  size: string,
  mode: 'Block' | 'Filesystem',
  dataSource?: { kind: string; name: string; apiGroup?: string },
  storageClassName = 'standard',
): V1PersistentVolumeClaim {
  return {
    metadata: { name },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: size } },
      volumeMode: mode,
      storageClassName,
      ...(dataSource === undefined ? {} : { dataSourceRef: dataSource }),
    },
  };
}

const bound = (c: V1PersistentVolumeClaim): boolean => c.status?.phase === 'Bound';

async function createBound(body: V1PersistentVolumeClaim): Promise<V1PersistentVolumeClaim> {
  await core.createNamespacedPersistentVolumeClaim({ namespace: NS, body });
  return waitForObject<V1PersistentVolumeClaim>(kc, {
    path: PVCS,
    name: body.metadata?.name ?? '',
    until: bound,
  });
}

async function hostPath(pvc: V1PersistentVolumeClaim): Promise<string> {
  const pv = await core.readPersistentVolume({ name: pvc.spec?.volumeName ?? '' });
  return pv.spec?.hostPath?.path ?? '';
}

async function snapshot(name: string, claimName: string): Promise<Snapshot> {
  await custom.createNamespacedCustomObject({
    group: 'snapshot.storage.k8s.io',
    version: 'v1',
    namespace: NS,
    plural: 'volumesnapshots',
    body: {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshot',
      metadata: { name },
      spec: { source: { persistentVolumeClaimName: claimName } },
    },
  });
  return waitForObject<Snapshot>(kc, {
    path: SNAPSHOTS,
    name,
    until: (s) => s.status?.readyToUse === true,
  });
}

const SNAP_REF = { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot' };

describe('snapshots', () => {
  it('a snapshot keeps the data of its moment; a larger Block claim restored from it keeps the data and grows', async () => {
    const src = await createBound(claim('snap-src', '8Mi', 'Block'));
    const before = randomBytes(8 * MIB);
    await writeFile(await hostPath(src), before);
    const snap = await snapshot('snap-1', 'snap-src');
    expect(snap.status?.restoreSize).toBe('8Mi');
    expect(snap.status?.boundVolumeSnapshotContentName).toMatch(/^snapcontent-/);
    // Writes after the snapshot do not reach it.
    await writeFile(await hostPath(src), randomBytes(8 * MIB));
    const restored = await createBound(
      claim('snap-restore', '16Mi', 'Block', { ...SNAP_REF, name: 'snap-1' }),
    );
    const data = await readFile(await hostPath(restored));
    expect(data.length).toBe(16 * MIB);
    expect(data.subarray(0, 8 * MIB).equals(before)).toBe(true);
    expect(data.subarray(8 * MIB).every((b) => b === 0)).toBe(true);
  });

  it('a claim with a claim dataSource starts from a copy of its files', async () => {
    const src = await createBound(claim('fs-src', '8Mi', 'Filesystem'));
    const content = randomBytes(3 * MIB);
    await writeFile(join(await hostPath(src), 'disk.img'), content);
    const cloned = await createBound(
      claim('fs-clone', '8Mi', 'Filesystem', { kind: 'PersistentVolumeClaim', name: 'fs-src' }),
    );
    const copy = await readFile(join(await hostPath(cloned), 'disk.img'));
    expect(copy.equals(content)).toBe(true);
  });

  it('a claim smaller than its snapshot is not provisioned', async () => {
    await createBound(claim('small-src', '8Mi', 'Block'));
    await snapshot('snap-small', 'small-src');
    await core.createNamespacedPersistentVolumeClaim({
      namespace: NS,
      body: claim('too-small', '4Mi', 'Block', { ...SNAP_REF, name: 'snap-small' }),
    });
    const deadline = Date.now() + 30_000;
    let reasons: string[] = [];
    while (Date.now() < deadline) {
      const list = await core.listNamespacedEvent({
        namespace: NS,
        fieldSelector: 'involvedObject.name=too-small',
      });
      reasons = list.items.map((e) => e.reason ?? '');
      if (reasons.includes('ProvisioningFailed')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(reasons).toContain('ProvisioningFailed');
    const pvc = await core.readNamespacedPersistentVolumeClaim({
      namespace: NS,
      name: 'too-small',
    });
    expect(pvc.status?.phase).toBe('Pending');
  });

  it('a bound claim of an expandable class grows to its new request', async () => {
    const pvc = await createBound(claim('grow', '8Mi', 'Block', undefined, 'expandable'));
    const patched = await kubectl(sandbox, [
      ...['patch', 'pvc', 'grow', '--type', 'merge'],
      ...['-p', JSON.stringify({ spec: { resources: { requests: { storage: '20Mi' } } } })],
    ]);
    expect(patched.stderr).toBe('');
    const grown = await waitForObject<V1PersistentVolumeClaim>(kc, {
      path: PVCS,
      name: 'grow',
      until: (c) => c.status?.capacity?.['storage'] === '20Mi',
    });
    expect(grown.spec?.volumeName).toBe(pvc.spec?.volumeName);
    expect((await stat(await hostPath(grown))).size).toBe(20 * MIB);
  });

  it('a deleted snapshot takes its content and copy along', async () => {
    await createBound(claim('del-src', '8Mi', 'Block'));
    const snap = await snapshot('snap-del', 'del-src');
    const contentName = snap.status?.boundVolumeSnapshotContentName ?? '';
    await custom.deleteNamespacedCustomObject({
      group: 'snapshot.storage.k8s.io',
      version: 'v1',
      namespace: NS,
      plural: 'volumesnapshots',
      name: 'snap-del',
    });
    await waitForDeletion(kc, '/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents', {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshotContent',
      name: contentName,
    });
    await expect(stat(join(sandbox.dataDir, 'snapshots', contentName))).rejects.toThrow();
  });
});
