// SPDX-License-Identifier: Apache-2.0
/**
 * End to end, the unhappy paths: a 404 retried with restarts, a checksum mismatch and an image
 * larger than its claim ending Failed, an invalid spec reported without a webhook; plus the
 * CDIConfig status and filesystem overhead, and leader election over a real Lease.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConditionTypes } from '../../common/api/phases.js';
import type { DataVolume } from '../../common/api/datavolume.js';
import {
  makeRawImage,
  makeTempDir,
  qemuConvertToRaw,
  qemuImg,
  sha256File,
} from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { silentLogger } from '../../common/logger.js';
import { CDI_GROUP, CDI_VERSION, type CdiConfig } from '../../common/api/datavolume.js';
import { KubeClient } from '../../controller/kube.js';
import { LeaderElector } from '../../controller/leader-election.js';
import { kubectl, waitForDeletion, waitForObject } from '../sandbox/testing.js';
import {
  apply,
  blankDvManifest,
  httpDvManifest,
  startControllerEnv,
  waitForDv,
  waitForPhase,
  waitForPvc,
  type ControllerEnv,
  succeededWithDisk,
} from './controller-harness.js';

const MIB = 1024 * 1024;
let env: ControllerEnv;
let files: TestHttpServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let rawRef: string;
let rawSha256: string;

const dvManifest = httpDvManifest;

function running(
  dv: DataVolume,
): { status?: string; reason?: string; message?: string } | undefined {
  return dv.status?.conditions?.find((c) => c.type === ConditionTypes.Running);
}

beforeAll(async () => {
  tmp = await makeTempDir('cdi-e2e-fail-');
  const raw = await makeRawImage(join(tmp.dir, 'disk.raw'), 24 * MIB, [
    { offset: 0, length: 2 * MIB, seed: 7 },
    { offset: 12 * MIB, length: 12 * MIB, seed: 8 },
  ]);
  const big = join(tmp.dir, 'big.qcow2');
  await qemuImg('create', '-f', 'qcow2', big, '512M');
  rawRef = await qemuConvertToRaw(raw, join(tmp.dir, 'ref.raw'));
  rawSha256 = await sha256File(raw);
  files = await startTestHttpServer({
    files: { '/disk.raw': { path: raw }, '/big.qcow2': { path: big } },
  });
  env = await startControllerEnv();
});

afterAll(async () => {
  await env?.stop();
  await files?.close();
  await tmp?.cleanup();
});

describe('failures', () => {
  it('a 404 is retried: ImportInProgress, the cause in Running, restarts counted', async () => {
    await apply(env, dvManifest('missing', `${files.origin}/nope.raw`));
    const dv = await waitForDv(
      env,
      'default',
      'missing',
      (d) => (d.status?.restartCount ?? 0) >= 2 && (running(d)?.message ?? '').includes('404'),
    );
    expect(dv.status?.phase).toBe('ImportInProgress');
    expect(running(dv)?.reason).toBe('Error');
    expect(running(dv)?.message).toContain('Unable to connect to http data source');
    expect(running(dv)?.message).toContain('404');
  });

  it('a checksum mismatch is terminal: Failed, ChecksumError, no more pods', async () => {
    const wrong = `sha256:${'0'.repeat(64)}`;
    await apply(
      env,
      dvManifest('badsum', `${files.origin}/disk.raw`, `      checksum: "${wrong}"\n`),
    );
    const dv = await waitForPhase(env, 'default', 'badsum', 'Failed');
    expect(running(dv)?.reason).toBe('ChecksumError');
    expect(running(dv)?.message).toContain('checksum mismatch');
    await waitForDeletion(env.kc, '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'importer-badsum',
      namespace: 'default',
    });
    const events = await env.core.listNamespacedEvent({ namespace: 'default' });
    expect(
      events.items.some((e) => e.involvedObject.name === 'badsum' && e.reason === 'ImportFailed'),
    ).toBe(true);
  });

  it('a matching checksum succeeds', async () => {
    await apply(
      env,
      dvManifest('goodsum', `${files.origin}/disk.raw`, `      checksum: "sha256:${rawSha256}"\n`),
    );
    expect(await succeededWithDisk(env, 'default', 'goodsum', rawRef)).toBe(true);
  });

  it('an image larger than the claim is terminal: "DataVolume too small to contain image"', async () => {
    await apply(env, dvManifest('toobig', `${files.origin}/big.qcow2`, '', '32Mi'));
    const dv = await waitForPhase(env, 'default', 'toobig', 'Failed');
    expect(running(dv)?.message).toBe('DataVolume too small to contain image');
  });

  it('an invalid DataVolume is reported as a condition and an event', async () => {
    await apply(env, dvManifest('badurl', 'ftp://example.com/x.img'));
    const dv = await waitForPhase(env, 'default', 'badurl', 'Failed');
    expect(running(dv)?.reason).toBe('InvalidSpec');
    expect(running(dv)?.message).toContain('scheme "ftp"');
    const pvcs = await env.core.listNamespacedPersistentVolumeClaim({ namespace: 'default' });
    expect(pvcs.items.map((p) => p.metadata?.name)).not.toContain('badurl');
  });
});

describe('CDIConfig', () => {
  it('reports the effective values and applies a new filesystem overhead', async () => {
    const path = `/apis/${CDI_GROUP}/${CDI_VERSION}/cdiconfigs`;
    const first = (await waitForObject(env.kc, {
      path,
      name: 'config',
      until: (o) =>
        (o as CdiConfig).status?.filesystemOverhead?.storageClass?.['wffc'] !== undefined,
    })) as CdiConfig;
    expect(first.status?.filesystemOverhead).toEqual({
      global: '0.06',
      storageClass: { standard: '0.06', wffc: '0.06' },
    });
    expect(first.status?.defaultPodResourceRequirements?.limits).toEqual({
      cpu: '750m',
      memory: '600M',
    });
    const r = await kubectl(env.sandbox, [
      'patch',
      'cdiconfig',
      'config',
      '--type=merge',
      '-p',
      '{"spec":{"filesystemOverhead":{"global":"0.5"}}}',
    ]);
    expect(r.stderr).toBe('');
    await waitForObject(env.kc, {
      path,
      name: 'config',
      until: (o) => (o as CdiConfig).status?.filesystemOverhead?.global === '0.5',
    });
    await apply(env, blankDvManifest('overhead', '100Mi'));
    const pvc = await waitForPvc(env, 'default', 'overhead', (p) => p.spec !== undefined);
    expect(pvc.spec?.resources?.requests?.['storage']).toBe(String(150 * MIB));
    await waitForPhase(env, 'default', 'overhead', 'Succeeded');
  });
});

describe('leader election', () => {
  it('one holder at a time on a real Lease; the other takes over after release', async () => {
    const store = new KubeClient(env.kc);
    const opts = { store, namespace: 'default', log: silentLogger, retryPeriodMs: 100 };
    const a = new LeaderElector({ ...opts, identity: 'replica-a' });
    const b = new LeaderElector({ ...opts, identity: 'replica-b' });
    expect(await a.acquire()).toBe(true);
    expect(await b.tryAcquireOrRenew()).toBe(false);
    const bLeads = b.acquire();
    await a.release();
    expect(await bLeads).toBe(true);
    const lease = await store.getLease('default', 'cdi-controller-leader-election-helper');
    expect(lease?.spec?.holderIdentity).toBe('replica-b');
    expect(lease?.spec?.leaseTransitions).toBeGreaterThanOrEqual(1);
    await b.release();
  });
});
