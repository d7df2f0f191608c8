// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: host-assisted clones in the sandbox. A DataVolume imported from an http qcow2 is
 * cloned into a filesystem and a block DataVolume, through a DataSource, and by a clone that is
 * created before its source exists; every clone must hold exactly the source's disk. Refusals
 * (target smaller than the source) fail the DataVolume with CDI's words; a clone from another
 * namespace without a clone token waits (the network clone has its own suite).
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeQcow2Disk, makeTempDir } from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { waitForObject } from '../sandbox/testing.js';
import {
  apply,
  httpDvManifest,
  sameDisk,
  startControllerEnv,
  volumeData,
  waitForDv,
  waitForPhase,
  type ControllerEnv,
  succeededWithDisk,
} from './controller-harness.js';

const MIB = 1024 * 1024;
let env: ControllerEnv;
let files: TestHttpServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let rawRef: string;

beforeAll(async () => {
  tmp = await makeTempDir('cdi-e2e-clone-');
  const { qcow2, reference } = await makeQcow2Disk(tmp.dir, 'disk', 20 * MIB, [
    { offset: 0, length: MIB, seed: 11 },
    { offset: 7 * MIB + 512, length: 2 * MIB, seed: 12 },
    { offset: 19 * MIB, length: MIB, seed: 13 },
  ]);
  rawRef = reference;
  files = await startTestHttpServer({ files: { '/disk.qcow2': { path: qcow2 } } });
  env = await startControllerEnv();
  await apply(env, httpDvManifest('golden', `${files.origin}/disk.qcow2`, '', '32Mi'));
  await waitForPhase(env, 'default', 'golden', 'Succeeded');
});

afterAll(async () => {
  await env?.stop();
  await files?.close();
  await tmp?.cleanup();
});

/** A clone DataVolume; `source` and `storage` are YAML blocks indented for `spec`. */
function cloneManifest(name: string, source: string, storage = '  storage: {}\n'): string {
  return `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: ${name}
spec:
${source}${storage}`;
}

const fromGolden = '  source:\n    pvc:\n      name: golden\n      namespace: default\n';

function runningMessage(dv: {
  status?: { conditions?: { type: string; message?: string }[] };
}): string {
  return dv.status?.conditions?.find((c) => c.type === 'Running')?.message ?? '';
}

describe('DataVolume clones', () => {
  it.each([
    {
      what: 'into a filesystem DataVolume (size from the source)',
      name: 'clone-fs',
      storage: '  storage: {}\n',
    },
    {
      what: 'into a block DataVolume',
      name: 'clone-block',
      storage: '  storage:\n    volumeMode: Block\n',
    },
  ])('$what: Succeeded, the same disk', async ({ name, storage }) => {
    await apply(env, cloneManifest(name, fromGolden, storage));
    const dv = await waitForPhase(env, 'default', name, 'Succeeded');
    expect(dv.status?.progress).toBe('100.0%');
    expect(runningMessage(dv)).toBe('Clone Complete');
    expect(await sameDisk(rawRef, await volumeData(env, 'default', name))).toBe(true);
    const pvc = await env.core.readNamespacedPersistentVolumeClaim({ namespace: 'default', name });
    expect(pvc.metadata?.annotations?.['k8s.io/CloneRequest']).toBe('default/golden');
    const events = await env.core.listNamespacedEvent({ namespace: 'default' });
    const reasons = events.items
      .filter((e) => e.involvedObject.name === name && e.involvedObject.kind === 'DataVolume')
      .map((e) => `${e.reason ?? ''}: ${e.message ?? ''}`);
    expect(reasons).toContain(
      `CloneSucceeded: Successfully cloned from default/golden into default/${name}`,
    );
  });

  it('from a block source (a clone of the block clone) into a filesystem DataVolume', async () => {
    await waitForPhase(env, 'default', 'clone-block', 'Succeeded');
    await apply(
      env,
      cloneManifest(
        'clone-of-block',
        '  source:\n    pvc:\n      name: clone-block\n      namespace: default\n',
      ),
    );
    expect(await succeededWithDisk(env, 'default', 'clone-of-block', rawRef)).toBe(true);
  });

  it('through a DataSource (sourceRef)', async () => {
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataSource
metadata:
  name: golden-ds
spec:
  source:
    pvc:
      namespace: default
      name: golden
`,
    );
    await apply(
      env,
      cloneManifest('from-ds', '  sourceRef:\n    kind: DataSource\n    name: golden-ds\n'),
    );
    expect(await succeededWithDisk(env, 'default', 'from-ds', rawRef)).toBe(true);
    // The DataSource reports that its claim is ready to be cloned, as CDI's controller does.
    const ds = await waitForObject<KubernetesObject & { status?: { conditions?: unknown[] } }>(
      env.kc,
      {
        path: '/apis/cdi.kubevirt.io/v1beta1/namespaces/default/datasources',
        name: 'golden-ds',
        until: (o) => (o.status?.conditions ?? []).length > 0,
        timeoutMs: 10_000,
      },
    );
    expect(ds.status?.conditions).toEqual([
      expect.objectContaining({
        type: 'Ready',
        status: 'True',
        reason: 'Ready',
        message: 'DataSource is ready to be consumed',
      }),
    ]);
    // The spec is kept as written: no source was filled in.
    const dv = await waitForPhase(env, 'default', 'from-ds', 'Succeeded');
    expect(dv.spec?.source).toBeUndefined();
  });

  it('waits for a source that does not exist yet, then clones it', async () => {
    await apply(
      env,
      cloneManifest(
        'late-clone',
        '  source:\n    pvc:\n      name: late-src\n      namespace: default\n',
      ),
    );
    const waiting = await waitForDv(
      env,
      'default',
      'late-clone',
      (d) => runningMessage(d) === "The source pvc late-src doesn't exist",
    );
    expect(waiting.status?.phase).toBe('Pending');
    // No target claim while the source is missing (its size is the source's).
    const pvcs = await env.core.listNamespacedPersistentVolumeClaim({ namespace: 'default' });
    expect(pvcs.items.map((p) => p.metadata?.name)).not.toContain('late-clone');
    await apply(env, httpDvManifest('late-src', `${files.origin}/disk.qcow2`, '', '32Mi'));
    expect(await succeededWithDisk(env, 'default', 'late-clone', rawRef)).toBe(true);
  });

  it('a target smaller than the source fails for good', async () => {
    await apply(
      env,
      cloneManifest(
        'small-clone',
        fromGolden,
        '  pvc:\n    accessModes: [ReadWriteOnce]\n    resources:\n      requests:\n        storage: 8Mi\n',
      ),
    );
    const dv = await waitForPhase(env, 'default', 'small-clone', 'Failed');
    expect(runningMessage(dv)).toContain(
      "The clone doesn't meet the validation requirements: target resources requests storage size is smaller than the source",
    );
    const pvcs = await env.core.listNamespacedPersistentVolumeClaim({ namespace: 'default' });
    expect(pvcs.items.map((p) => p.metadata?.name)).not.toContain('small-clone');
  });

  it('a clone from another namespace without a clone token waits with CloneValidationFailed', async () => {
    await apply(
      env,
      cloneManifest(
        'cross-ns',
        '  source:\n    pvc:\n      name: golden\n      namespace: images\n',
      ),
    );
    const dv = await waitForDv(env, 'default', 'cross-ns', (d) =>
      runningMessage(d).includes('clone token missing'),
    );
    expect(dv.status?.phase).toBe('Pending');
    expect(runningMessage(dv)).toBe(
      "The clone doesn't meet the validation requirements: clone token missing",
    );
  });
});
