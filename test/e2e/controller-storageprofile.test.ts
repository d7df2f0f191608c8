// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: the controller keeps a StorageProfile per sandbox StorageClass (recreating one
 * deleted by hand), and the DataVolume `storage` API takes its volume mode from the class's
 * profile, as CDI does: with the default class's profile set to Block by its admin, a DataVolume
 * naming no volume mode gets a Block claim and its import lands byte-identical.
 */
import { join } from 'node:path';
import { Watch, type CoreV1Event, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CDI_GROUP,
  CDI_VERSION,
  CdiResources,
  type StorageProfile,
} from '../../common/api/datavolume.js';
import { makeRawImage, makeTempDir, qemuConvertToRaw } from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { DEFAULT_CLASS_ANNOTATION, PROVISIONER } from '../sandbox/cluster.js';
import { kubectl, waitForDeletion, waitForObject } from '../sandbox/testing.js';
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
const PROFILES = `/apis/${CDI_GROUP}/${CDI_VERSION}/${CdiResources.StorageProfiles}`;

let env: ControllerEnv;
let files: TestHttpServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let rawRef: string;

function waitForProfile(
  name: string,
  until: (p: StorageProfile) => boolean,
): Promise<StorageProfile> {
  return waitForObject<KubernetesObject>(env.kc, {
    path: PROFILES,
    name,
    until: (o) => until(o as StorageProfile),
    timeoutMs: 20_000,
  }) as Promise<StorageProfile>;
}

/** Resolves once an Event of `reason` about `name` exists in `default` (the watch lists first). */
async function waitForEvent(name: string, reason: string, timeoutMs = 20_000): Promise<void> {
  let abort: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${reason} event for ${name}`)), timeoutMs);
      new Watch(env.kc)
        .watch(
          '/api/v1/namespaces/default/events',
          {},
          (_phase: string, e: CoreV1Event) => {
            if (e.involvedObject.name === name && e.reason === reason) resolve();
          },
          (err: unknown) => {
            if (
              err !== null &&
              err !== undefined &&
              !(err instanceof Error && err.name === 'AbortError')
            )
              reject(err instanceof Error ? err : new Error(JSON.stringify(err)));
          },
        )
        .then((c) => {
          abort = c;
        }, reject);
    });
  } finally {
    clearTimeout(timer);
    abort?.abort();
  }
}

async function profiles(): Promise<StorageProfile[]> {
  const r = await kubectl(env.sandbox, ['get', 'storageprofiles', '-o', 'json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { items: StorageProfile[] }).items;
}

beforeAll(async () => {
  tmp = await makeTempDir('cdi-e2e-profile-');
  const raw = await makeRawImage(join(tmp.dir, 'disk.raw'), 8 * MIB, [
    { offset: 0, length: MIB, seed: 7 },
    { offset: 5 * MIB + 512, length: MIB, seed: 8 },
  ]);
  rawRef = await qemuConvertToRaw(raw, join(tmp.dir, 'ref.raw'));
  files = await startTestHttpServer({ files: { '/disk.raw': { path: raw } } });
  env = await startControllerEnv();
});

afterAll(async () => {
  await env?.stop();
  await files?.close();
  await tmp?.cleanup();
});

describe('StorageProfiles', () => {
  it('lists one profile per storage class with the provisioner claim property sets', async () => {
    for (const name of ['standard', 'wffc'])
      await waitForProfile(name, (p) => (p.status?.claimPropertySets ?? []).length > 0);
    const got = await profiles();
    expect(got.map((p) => p.metadata.name).sort()).toEqual(['standard', 'wffc']);
    for (const p of got) {
      expect(p.status).toEqual({
        storageClass: p.metadata.name,
        provisioner: PROVISIONER,
        claimPropertySets: [
          { accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' },
          { accessModes: ['ReadWriteOnce'], volumeMode: 'Block' },
        ],
      });
    }
  });

  it('a profile deleted by hand comes back', async () => {
    await waitForProfile('wffc', (p) => p.status?.storageClass === 'wffc');
    const before = (await profiles()).find((p) => p.metadata.name === 'wffc');
    const r = await kubectl(env.sandbox, ['delete', 'storageprofile', 'wffc']);
    expect(r.code, r.stderr).toBe(0);
    const back = await waitForProfile(
      'wffc',
      (p) => p.metadata.uid !== before?.metadata.uid && p.status?.storageClass === 'wffc',
    );
    expect(back.status?.claimPropertySets?.[0]?.volumeMode).toBe('Filesystem');
  });

  it('the admin sets the default class to Block: a storage DataVolume gets a Block claim', async () => {
    await waitForProfile('standard', (p) => p.status?.storageClass === 'standard');
    const patch = JSON.stringify({
      spec: { claimPropertySets: [{ accessModes: ['ReadWriteOnce'], volumeMode: 'Block' }] },
    });
    const r = await kubectl(env.sandbox, [
      'patch',
      'storageprofile',
      'standard',
      '--type',
      'merge',
      '-p',
      patch,
    ]);
    expect(r.code, r.stderr).toBe(0);
    await waitForProfile(
      'standard',
      (p) =>
        p.status?.claimPropertySets?.length === 1 &&
        p.status.claimPropertySets[0]?.volumeMode === 'Block',
    );
    await apply(env, httpDvManifest('profile-block', `${files.origin}/disk.raw`, '', '16Mi'));
    await waitForPhase(env, 'default', 'profile-block', 'Succeeded');
    const pvc = await env.core.readNamespacedPersistentVolumeClaim({
      namespace: 'default',
      name: 'profile-block',
    });
    expect(pvc.spec?.volumeMode).toBe('Block');
    expect(pvc.spec?.accessModes).toEqual(['ReadWriteOnce']);
    // Block claims are not inflated for filesystem overhead.
    expect(pvc.spec?.resources?.requests?.['storage']).toBe('16Mi');
    expect(await sameDisk(rawRef, await volumeData(env, 'default', 'profile-block'))).toBe(true);
  });

  it('a new class of an unknown provisioner gets a profile without sets; gone with its class', async () => {
    await apply(
      env,
      `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: extra
provisioner: example.com/unknown
`,
    );
    const p = await waitForProfile('extra', (o) => o.status?.provisioner === 'example.com/unknown');
    expect(p.status).toEqual({ storageClass: 'extra', provisioner: 'example.com/unknown' });
    const r = await kubectl(env.sandbox, ['delete', 'storageclass', 'extra']);
    expect(r.code, r.stderr).toBe(0);
    await waitForDeletion(env.kc, PROFILES, {
      apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
      kind: 'StorageProfile',
      name: 'extra',
    });
  });

  // Last: it takes the default class away for a while.
  it('without any storage class the claim waits (ErrClaimNotValid), then is created', async () => {
    const unmark = await kubectl(env.sandbox, [
      'annotate',
      'storageclass',
      'standard',
      `${DEFAULT_CLASS_ANNOTATION}-`,
    ]);
    expect(unmark.code, unmark.stderr).toBe(0);
    // Restarted, the controller lists the classes before it serves anything: it has seen the
    // change when the DataVolume arrives.
    await env.stopController();
    await env.startController();
    await apply(env, httpDvManifest('no-class', `${files.origin}/disk.raw`, '', '16Mi'));
    const pending = await waitForDv(env, 'default', 'no-class', (dv) =>
      (dv.status?.conditions ?? []).some((c) => c.reason === 'ErrClaimNotValid'),
    );
    expect(pending.status?.phase).toBe('Pending');
    await waitForEvent('no-class', 'ErrClaimNotValid');
    const mark = await kubectl(env.sandbox, [
      'annotate',
      'storageclass',
      'standard',
      `${DEFAULT_CLASS_ANNOTATION}=true`,
    ]);
    expect(mark.code, mark.stderr).toBe(0);
    expect(await succeededWithDisk(env, 'default', 'no-class', rawRef)).toBe(true);
  });
});
