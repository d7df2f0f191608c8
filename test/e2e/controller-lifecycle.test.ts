// SPDX-License-Identifier: Apache-2.0
/**
 * End to end, the lifecycle: progress while a rate-limited import runs, the controller stopped
 * and restarted mid-import, deletion mid-import, and WaitForFirstConsumer with and without
 * immediate binding.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestHttpServer } from '../helpers/http-server.js';
import { kubectl, waitForDeletion } from '../sandbox/testing.js';
import {
  apply,
  sameDisk,
  httpDvManifest,
  startControllerEnv,
  startSlowDiskFixture,
  type SlowDiskFixture,
  volumeData,
  waitForMidImport,
  waitForPhase,
  waitForPod,
  type ControllerEnv,
  succeededWithDisk,
} from './controller-harness.js';

const MIB = 1024 * 1024;
let env: ControllerEnv;
let files: TestHttpServer;
let slow: TestHttpServer;
let fixture: SlowDiskFixture;
let rawRef: string;

const dvManifest = httpDvManifest;

beforeAll(async () => {
  // About 6 s for the 16 MiB image on the slow server: long enough to act mid-import.
  fixture = await startSlowDiskFixture('cdi-e2e-life-', 2.5 * MIB);
  ({ files, slow, rawRef } = fixture);
  env = await startControllerEnv();
});

afterAll(async () => {
  await env?.stop();
  await fixture?.close();
});

describe('lifecycle', () => {
  it('shows progress, and converges when the controller is restarted mid-import', async () => {
    await apply(env, dvManifest('restart-ctl', `${slow.origin}/disk.raw`));
    const mid = await waitForMidImport(env, 'restart-ctl');
    expect(mid.status?.phase).toBe('ImportInProgress');
    await env.stopController();
    await env.startController();
    const done = await waitForPhase(env, 'default', 'restart-ctl', 'Succeeded');
    expect(done.status?.progress).toBe('100.0%');
    expect(await sameDisk(rawRef, await volumeData(env, 'default', 'restart-ctl'))).toBe(true);
  });

  it('deleting a DataVolume mid-import removes its pod and claim', async () => {
    await apply(env, dvManifest('delete-me', `${slow.origin}/disk.raw`));
    await waitForPod(
      env,
      'default',
      'importer-delete-me',
      (p) => p.status?.phase === 'Running',
      30_000,
    );
    const r = await kubectl(env.sandbox, ['delete', 'dv', 'delete-me', '--wait=false']);
    expect(r.code).toBe(0);
    await waitForDeletion(env.kc, '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'importer-delete-me',
      namespace: 'default',
    });
    await waitForDeletion(env.kc, '/api/v1/namespaces/default/persistentvolumeclaims', {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      name: 'delete-me',
      namespace: 'default',
    });
  });

  it('waits for a first consumer on a WaitForFirstConsumer class, then imports', async () => {
    await apply(
      env,
      dvManifest('wffc', `${files.origin}/disk.raw`).replace(
        '  storage:\n',
        '  storage:\n    storageClassName: wffc\n',
      ),
    );
    await waitForPhase(env, 'default', 'wffc', 'WaitForFirstConsumer');
    await apply(
      env,
      `apiVersion: v1
kind: Pod
metadata:
  name: consumer
spec:
  containers:
    - name: vm
      image: quay.io/kubevirt/virt-launcher:latest
      volumeMounts:
        - name: disk
          mountPath: /disk
  volumes:
    - name: disk
      persistentVolumeClaim:
        claimName: wffc
`,
    );
    expect(await succeededWithDisk(env, 'default', 'wffc', rawRef)).toBe(true);
  });

  it('imports at once on a WaitForFirstConsumer class with immediate binding requested', async () => {
    await apply(
      env,
      dvManifest('wffc-now', `${files.origin}/disk.raw`)
        .replace(
          'metadata:\n  name: wffc-now\n',
          "metadata:\n  name: wffc-now\n  annotations:\n    cdi.kubevirt.io/storage.bind.immediate.requested: 'true'\n",
        )
        .replace('  storage:\n', '  storage:\n    storageClassName: wffc\n'),
    );
    expect(await succeededWithDisk(env, 'default', 'wffc-now', rawRef)).toBe(true);
  });
});
