// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: storage-side ("smart") clones in the sandbox, whose driver copies volumes for
 * snapshots and for claims with a data source. The StorageProfile's `cloneStrategy` picks
 * `csi-clone` or `snapshot`; a larger target is expanded afterwards; a target of another
 * provisioner falls back to the host-assisted copy with CDI's reason; `source.snapshot`
 * DataVolumes and DataSources naming a VolumeSnapshot restore it; a DataSource referring to
 * another one is followed. Every clone must hold exactly the source's disk.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeQcow2Disk, makeTempDir } from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { kubectl, waitForDeletion, waitForObject } from '../sandbox/testing.js';
import {
  apply,
  httpDvManifest,
  sameDisk,
  startControllerEnv,
  volumeData,
  waitForPhase,
  type ControllerEnv,
  succeededWithDisk,
} from './controller-harness.js';

const MIB = 1024 * 1024;
const DRIVER = 'sandbox.cdi.kubevirt.io/hostpath';
let env: ControllerEnv;
let files: TestHttpServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let rawRef: string;

interface Profile extends KubernetesObject {
  status?: { cloneStrategy?: string };
}

/** A StorageClass of `provisioner` whose StorageProfile asks for `strategy`. */
async function classWithStrategy(
  name: string,
  strategy: string,
  provisioner = DRIVER,
): Promise<void> {
  await apply(
    env,
    `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: ${name}
provisioner: ${provisioner}
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
`,
  );
  const path = '/apis/cdi.kubevirt.io/v1beta1/storageprofiles';
  await waitForObject<Profile>(env.kc, { path, name, until: () => true });
  const patched = await kubectl(env.sandbox, [
    ...['patch', 'storageprofile', name, '--type', 'merge'],
    ...['-p', JSON.stringify({ spec: { cloneStrategy: strategy } })],
  ]);
  expect(patched.stderr).toBe('');
  await waitForObject<Profile>(env.kc, {
    path,
    name,
    until: (p) => p.status?.cloneStrategy === strategy,
  });
}

beforeAll(async () => {
  tmp = await makeTempDir('cdi-e2e-smart-clone-');
  const { qcow2, reference } = await makeQcow2Disk(tmp.dir, 'disk', 20 * MIB, [
    { offset: 0, length: MIB, seed: 21 },
    { offset: 9 * MIB + 512, length: 2 * MIB, seed: 22 },
    { offset: 19 * MIB, length: MIB, seed: 23 },
  ]);
  rawRef = reference;
  files = await startTestHttpServer({ files: { '/disk.qcow2': { path: qcow2 } } });
  env = await startControllerEnv();
  await apply(env, httpDvManifest('golden', `${files.origin}/disk.qcow2`, '', '32Mi'));
  await apply(
    env,
    `apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: hostpath-snapclass
driver: ${DRIVER}
deletionPolicy: Delete
`,
  );
  await classWithStrategy('csi', 'csi-clone');
  await classWithStrategy('snap', 'snapshot');
  await classWithStrategy('elsewhere', 'csi-clone', `${DRIVER}-other`);
  await waitForPhase(env, 'default', 'golden', 'Succeeded');
});

afterAll(async () => {
  await env?.stop();
  await files?.close();
  await tmp?.cleanup();
});

/** A clone DataVolume; `source` and `storage` are YAML blocks indented for `spec`. */
function cloneManifest(name: string, source: string, storage: string): string {
  return `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: ${name}
spec:
${source}${storage}`;
}

const fromGolden = '  source:\n    pvc:\n      name: golden\n      namespace: default\n';
const storageOf = (cls: string, size?: string): string =>
  `  storage:\n    storageClassName: ${cls}\n` +
  (size === undefined ? '' : `    resources:\n      requests:\n        storage: ${size}\n`);

async function dvEvents(name: string): Promise<string[]> {
  const events = await env.core.listNamespacedEvent({ namespace: 'default' });
  return events.items
    .filter((e) => e.involvedObject.name === name && e.involvedObject.kind === 'DataVolume')
    .map((e) => `${e.type ?? ''} ${e.reason ?? ''}: ${e.message ?? ''}`);
}

async function claim(name: string) {
  return env.core.readNamespacedPersistentVolumeClaim({ namespace: 'default', name });
}

describe('smart clones', () => {
  it('csi-clone: the target is provisioned from the source claim', async () => {
    await apply(env, cloneManifest('csi-same', fromGolden, storageOf('csi')));
    expect(await succeededWithDisk(env, 'default', 'csi-same', rawRef)).toBe(true);
    const pvc = await claim('csi-same');
    expect(pvc.spec?.dataSourceRef).toMatchObject({
      kind: 'PersistentVolumeClaim',
      name: 'golden',
    });
    expect(pvc.metadata?.annotations?.['cdi.kubevirt.io/cloneType']).toBe('csi-clone');
    expect(pvc.metadata?.annotations?.['k8s.io/CloneRequest']).toBeUndefined();
    const events = await dvEvents('csi-same');
    expect(events).toContain(
      'Normal CSICloneInProgress: CSI Volume clone in progress (for pvc default/golden)',
    );
    expect(events).toContain(
      'Normal CloneSucceeded: Successfully cloned from default/golden into default/csi-same',
    );
  });

  it('csi-clone into a larger target: expanded afterwards, the data kept', async () => {
    await apply(env, cloneManifest('csi-larger', fromGolden, storageOf('csi', '64Mi')));
    await waitForPhase(env, 'default', 'csi-larger', 'Succeeded');
    const pvc = await claim('csi-larger');
    // The `storage` API adds the filesystem overhead to the 64Mi asked for.
    const capacity = Number(pvc.status?.capacity?.['storage']);
    expect(capacity).toBeGreaterThan(64 * MIB);
    expect(String(capacity)).toBe(pvc.spec?.resources?.requests?.['storage']);
    expect(await sameDisk(rawRef, await volumeData(env, 'default', 'csi-larger'))).toBe(true);
    expect(await dvEvents('csi-larger')).toContain(
      'Normal ExpansionInProgress: Expanding PersistentVolumeClaim for DataVolume default/csi-larger',
    );
  });

  it('snapshot: a temporary snapshot of the source, restored into the target, then removed', async () => {
    await apply(env, cloneManifest('snap-clone', fromGolden, storageOf('snap')));
    const dv = await waitForPhase(env, 'default', 'snap-clone', 'Succeeded');
    expect(await sameDisk(rawRef, await volumeData(env, 'default', 'snap-clone'))).toBe(true);
    const pvc = await claim('snap-clone');
    const temp = `tmp-snapshot-${dv.metadata.uid ?? ''}`;
    expect(pvc.spec?.dataSourceRef).toMatchObject({ kind: 'VolumeSnapshot', name: temp });
    const events = await dvEvents('snap-clone');
    expect(events).toContain(
      'Normal SnapshotForSmartCloneInProgress: Creating snapshot for smart-clone is in progress (for pvc default/golden)',
    );
    expect(events).toContain(
      'Normal CloneFromSnapshotSourceInProgress: Creating PVC from snapshot source is in progress (for pvc default/golden)',
    );
    await waitForDeletion(
      env.kc,
      '/apis/snapshot.storage.k8s.io/v1/namespaces/default/volumesnapshots',
      {
        apiVersion: 'snapshot.storage.k8s.io/v1',
        kind: 'VolumeSnapshot',
        name: temp,
        namespace: 'default',
      },
    );
  });

  it('another provisioner: falls back to the host-assisted copy with CDI reason', async () => {
    await apply(env, cloneManifest('fallback', fromGolden, storageOf('elsewhere')));
    expect(await succeededWithDisk(env, 'default', 'fallback', rawRef)).toBe(true);
    const pvc = await claim('fallback');
    expect(pvc.metadata?.annotations?.['k8s.io/CloneRequest']).toBe('default/golden');
    expect(pvc.metadata?.annotations?.['cdi.kubevirt.io/cloneType']).toBe('copy');
    expect(pvc.metadata?.annotations?.['cdi.kubevirt.io/cloneFallbackReason']).toBe(
      'Provisioners are incompatible',
    );
    expect(await dvEvents('fallback')).toContain(
      'Warning IncompatibleProvisioners: Provisioners are incompatible',
    );
  });
});

describe('snapshot sources', () => {
  beforeAll(async () => {
    await apply(
      env,
      `apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata:
  name: golden-snap
spec:
  volumeSnapshotClassName: hostpath-snapclass
  source:
    persistentVolumeClaimName: golden
`,
    );
  });

  it('source.snapshot: the target is restored from the VolumeSnapshot', async () => {
    await apply(
      env,
      cloneManifest(
        'from-snap',
        '  source:\n    snapshot:\n      namespace: default\n      name: golden-snap\n',
        storageOf('standard'),
      ),
    );
    expect(await succeededWithDisk(env, 'default', 'from-snap', rawRef)).toBe(true);
    expect(await dvEvents('from-snap')).toContain(
      'Normal CloneFromSnapshotSourceInProgress: Creating PVC from snapshot source is in progress (for snapshot default/golden-snap)',
    );
  });

  it('source.snapshot into another provisioner: restored into a temporary claim and copied', async () => {
    await apply(
      env,
      cloneManifest(
        'snap-copy',
        '  source:\n    snapshot:\n      namespace: default\n      name: golden-snap\n',
        storageOf('elsewhere'),
      ),
    );
    const dv = await waitForPhase(env, 'default', 'snap-copy', 'Succeeded');
    expect(await sameDisk(rawRef, await volumeData(env, 'default', 'snap-copy'))).toBe(true);
    const temp = `tmp-source-pvc-${dv.metadata.uid ?? ''}`;
    const pvc = await claim('snap-copy');
    expect(pvc.metadata?.annotations?.['k8s.io/CloneRequest']).toBe(`default/${temp}`);
    const events = await dvEvents('snap-copy');
    expect(events).toContain(
      'Warning NoProvisionerMatch: The storageclass provisioner does not match the volumesnapshotcontent driver',
    );
    expect(events).toContain(
      'Normal CloneFromSnapshotSourceInProgress: Creating PVC from snapshot source is in progress (for snapshot default/golden-snap)',
    );
    await waitForDeletion(env.kc, '/api/v1/namespaces/default/persistentvolumeclaims', {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      name: temp,
      namespace: 'default',
    });
  });

  it('a DataSource naming the snapshot is Ready and clones from it', async () => {
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataSource
metadata:
  name: golden-snap-ds
spec:
  source:
    snapshot:
      namespace: default
      name: golden-snap
`,
    );
    const ds = await waitForObject<
      KubernetesObject & { status?: { conditions?: { type: string; status: string }[] } }
    >(env.kc, {
      path: '/apis/cdi.kubevirt.io/v1beta1/namespaces/default/datasources',
      name: 'golden-snap-ds',
      until: (o) =>
        (o.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    });
    expect(ds.metadata?.name).toBe('golden-snap-ds');
    await apply(
      env,
      cloneManifest(
        'from-snap-ds',
        '  sourceRef:\n    kind: DataSource\n    name: golden-snap-ds\n',
        storageOf('standard'),
      ),
    );
    expect(await succeededWithDisk(env, 'default', 'from-snap-ds', rawRef)).toBe(true);
  });

  it('a DataSource referring to another DataSource (chain) is followed', async () => {
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataSource
metadata:
  name: golden-pvc-ds
spec:
  source:
    pvc:
      namespace: default
      name: golden
---
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataSource
metadata:
  name: latest
spec:
  source:
    dataSource:
      name: golden-pvc-ds
`,
    );
    await apply(
      env,
      cloneManifest(
        'from-chain',
        '  sourceRef:\n    kind: DataSource\n    name: latest\n',
        storageOf('csi'),
      ),
    );
    expect(await succeededWithDisk(env, 'default', 'from-chain', rawRef)).toBe(true);
  });
});
