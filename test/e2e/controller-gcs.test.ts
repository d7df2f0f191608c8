// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: DataVolumes with a `gcs` source, applied with kubectl to the sandbox, imported by
 * importer pods running from the cdi image under runc (user 107, read-only root) from a GCS
 * stand-in on 127.0.0.1 (test/helpers/gcs-server.ts). A private object
 * is read with the service-account key of the `secretRef` Secret (`credentials.json`, mounted at
 * /google as CDI does), a public one anonymously; the URL's host is the endpoint, as in CDI.
 * Every volume must end holding what `qemu-img convert -O raw` makes of the source.
 */
import { readFile } from 'node:fs/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { compressFile, makeQcow2Disk, makeTempDir } from '../fixtures/index.js';
import {
  createServiceAccountKey,
  startGcsServer,
  type TestGcsServer,
} from '../helpers/gcs-server.js';
import { buildImageOnce } from '../containers/image-build.js';
import { defaultImageArchive, repoRoot } from '../sandbox/index.js';
import {
  apply,
  startControllerEnv,
  type ControllerEnv,
  succeededWithDisk,
} from './controller-harness.js';

const MIB = 1024 * 1024;
let env: ControllerEnv;
let gcs: TestGcsServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let rawRef: string;

beforeAll(async () => {
  tmp = await makeTempDir('cdi-e2e-gcs-');
  const { qcow2, reference } = await makeQcow2Disk(tmp.dir, 'disk', 16 * MIB, [
    { offset: 0, length: MIB, seed: 4 },
    { offset: 11 * MIB, length: 2 * MIB, seed: 6 },
  ]);
  const xz = await compressFile(qcow2, `${qcow2}.xz`, 'xz');
  rawRef = reference;
  gcs = await startGcsServer((origin) => createServiceAccountKey(`${origin}/token`));
  gcs.objects.set('vm-images/fedora/disk.qcow2', { data: await readFile(qcow2) });
  gcs.objects.set('public-images/disk.qcow2.xz', { data: await readFile(xz), public: true });
  const image =
    process.env['CDI_E2E_IMAGE'] ??
    (await buildImageOnce(repoRoot(), defaultImageArchive(), (l) => console.log(l)));
  // gs:// URLs reach the stand-in: the controller hands its endpoint to gcs importer pods.
  env = await startControllerEnv(
    undefined,
    { podRuntime: 'runc', image },
    { STORAGE_EMULATOR_HOST: gcs.host },
  );
}, 600_000);

afterAll(async () => {
  await env?.stop();
  await gcs?.close();
  await tmp?.cleanup();
});

function gcsDv(name: string, url: string, secretRef?: string): string {
  return `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: ${name}
spec:
  source:
    gcs:
      url: ${url}
${secretRef === undefined ? '' : `      secretRef: ${secretRef}\n`}  storage:
    resources:
      requests:
        storage: 64Mi
`;
}

describe('DataVolume from GCS', () => {
  it('imports a private object with the service-account key of secretRef', async () => {
    const key = JSON.stringify(gcs.account?.json ?? '');
    await apply(
      env,
      `apiVersion: v1
kind: Secret
metadata:
  name: gcs-key
stringData:
  credentials.json: ${key}
---
${gcsDv('gcs-keyed', `${gcs.origin}/vm-images/fedora/disk.qcow2`, 'gcs-key')}`,
    );
    expect(env.sandbox.podRuntime).toBe('runc');
    expect(await succeededWithDisk(env, 'default', 'gcs-keyed', rawRef)).toBe(true);
    const tokenRequests = gcs.requests.filter((r) => r.method === 'POST' && r.url === '/token');
    expect(tokenRequests.length).toBeGreaterThan(0);
    const reads = gcs.requests.filter((r) => r.url === '/vm-images/fedora/disk.qcow2');
    expect(reads.length).toBeGreaterThan(0);
    for (const r of reads) {
      expect(gcs.issued).toContain(r.authorization?.replace(/^Bearer /, ''));
    }
  });

  it('imports a gs:// URL through the endpoint the controller is given', async () => {
    await apply(env, gcsDv('gcs-gs-url', 'gs://vm-images/fedora/disk.qcow2', 'gcs-key'));
    expect(await succeededWithDisk(env, 'default', 'gcs-gs-url', rawRef)).toBe(true);
  });

  it('imports a public object anonymously', async () => {
    await apply(env, gcsDv('gcs-public', `${gcs.origin}/public-images/disk.qcow2.xz`));
    expect(await succeededWithDisk(env, 'default', 'gcs-public', rawRef)).toBe(true);
    const reads = gcs.requests.filter((r) => r.url === '/public-images/disk.qcow2.xz');
    expect(reads.length).toBeGreaterThan(0);
    for (const r of reads) expect(r.authorization).toBeUndefined();
  });
});
