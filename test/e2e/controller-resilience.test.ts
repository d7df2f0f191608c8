// SPDX-License-Identifier: Apache-2.0
/**
 * End to end, resilience: the importer process killed mid-import, every watch of the API
 * server closed mid-import (informers must resume), and the target claim deleted mid-import
 * (the DataVolume re-creates it and imports again, as CDI does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestHttpServer } from '../helpers/http-server.js';
import { kubectl } from '../sandbox/testing.js';
import {
  apply,
  killImporter,
  sameDisk,
  httpDvManifest,
  startControllerEnv,
  startSlowDiskFixture,
  type SlowDiskFixture,
  volumeData,
  waitForMidImport,
  waitForPhase,
  waitForPvc,
  type ControllerEnv,
  succeededWithDisk,
} from './controller-harness.js';

const MIB = 1024 * 1024;
let env: ControllerEnv;
let slow: TestHttpServer;
let fixture: SlowDiskFixture;
let rawRef: string;

const dvManifest = httpDvManifest;

beforeAll(async () => {
  // About 4 s for the 16 MiB image on the slow server: long enough to act mid-import.
  fixture = await startSlowDiskFixture('cdi-e2e-res-', 4 * MIB);
  ({ slow, rawRef } = fixture);
  env = await startControllerEnv();
});

afterAll(async () => {
  await env?.stop();
  await fixture?.close();
});

describe('resilience', () => {
  it('converges to a correct disk when the importer process is killed mid-import', async () => {
    await apply(env, dvManifest('kill-importer', `${slow.origin}/disk.raw`));
    const mid = await waitForMidImport(env, 'kill-importer');
    expect(await killImporter(mid.metadata.uid ?? '')).toBeGreaterThan(0);
    const done = await waitForPhase(env, 'default', 'kill-importer', 'Succeeded');
    expect(done.status?.restartCount).toBeGreaterThanOrEqual(1);
    expect(await sameDisk(rawRef, await volumeData(env, 'default', 'kill-importer'))).toBe(true);
  });

  it('converges when the API server closes every watch mid-import', async () => {
    await apply(env, dvManifest('watch-resume', `${slow.origin}/disk.raw`));
    await waitForPhase(env, 'default', 'watch-resume', 'ImportInProgress', 30_000);
    env.sandbox.closeWatches();
    expect(await succeededWithDisk(env, 'default', 'watch-resume', rawRef)).toBe(true);
  });

  it('re-creates a claim deleted mid-import and imports again', async () => {
    await apply(env, dvManifest('pvc-gone', `${slow.origin}/disk.raw`));
    await waitForPhase(env, 'default', 'pvc-gone', 'ImportInProgress', 30_000);
    const first = await env.core.readNamespacedPersistentVolumeClaim({
      namespace: 'default',
      name: 'pvc-gone',
    });
    const r = await kubectl(env.sandbox, ['delete', 'pvc', 'pvc-gone', '--wait=false']);
    expect(r.code).toBe(0);
    const second = await waitForPvc(
      env,
      'default',
      'pvc-gone',
      (p) => p.metadata?.uid !== first.metadata?.uid && p.metadata?.deletionTimestamp === undefined,
    );
    expect(second.metadata?.ownerReferences?.[0]?.kind).toBe('DataVolume');
    expect(await succeededWithDisk(env, 'default', 'pvc-gone', rawRef)).toBe(true);
  });
});
