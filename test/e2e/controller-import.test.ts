// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: manifests in the Go CDI's documented forms, applied with the real kubectl to the
 * sandbox cluster, imported by real importer pods under the controller; every volume must end
 * holding exactly what `qemu-img convert -O raw` makes of the source.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import { compressFile, makeQcow2Disk, makeTempDir, qemuImg } from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { createTestTls, type TestTls } from '../helpers/tls.js';
import {
  pushContainerDisk,
  startRegistry,
  type RegistryServer,
} from '../helpers/registry-server.js';
import { kubectl } from '../sandbox/testing.js';
import {
  apply,
  blankDvManifest,
  sameDisk,
  startControllerEnv,
  volumeData,
  waitForPhase,
  waitForPvc,
  type ControllerEnv,
  succeededWithDisk,
} from './controller-harness.js';

const MIB = 1024 * 1024;

/** The part of s3rver's API used here (it ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
const S3rver = createRequire(import.meta.url)('s3rver') as new (
  options: Record<string, unknown>,
) => S3rverInstance;
/** s3rver's built-in account. */
const S3_KEY = 'S3RVER';
let s3: S3rverInstance;
let s3Endpoint: string;
let registry: RegistryServer;
let tls: TestTls;
let secure: TestHttpServer;
let env: ControllerEnv;
let files: TestHttpServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let rawRef: string;

beforeAll(async () => {
  tmp = await makeTempDir('cdi-e2e-ctl-');
  const { raw, qcow2, reference } = await makeQcow2Disk(tmp.dir, 'disk', 24 * MIB, [
    { offset: 0, length: 1 * MIB, seed: 1 },
    { offset: 9 * MIB + 4096, length: 3 * MIB, seed: 2 },
    { offset: 23 * MIB, length: MIB, seed: 3 },
  ]);
  const xz = await compressFile(raw, join(tmp.dir, 'disk.raw.xz'), 'xz');
  rawRef = reference;
  files = await startTestHttpServer({
    files: {
      '/disk.qcow2': { path: qcow2 },
      '/disk.raw.xz': { path: xz },
      '/disk.raw': { path: raw },
    },
  });
  s3 = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(tmp.dir, 's3'),
    configureBuckets: [{ name: 'images' }],
  });
  s3Endpoint = `http://127.0.0.1:${(await s3.run()).port}`;
  const client = new S3Client({
    endpoint: s3Endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_KEY },
  });
  await client.send(
    new PutObjectCommand({ Bucket: 'images', Key: 'vm/disk.qcow2', Body: await readFile(qcow2) }),
  );
  client.destroy();
  tls = await createTestTls();
  // HTTPS with a private CA and basic auth: the CA comes from a ConfigMap, the credentials from a
  // Secret or an extra header, as CDI's file host on ports 81/444 tests them.
  secure = await startTestHttpServer({
    files: { '/disk.qcow2': { path: qcow2 } },
    tls: { certPem: tls.certPem, keyPem: tls.keyPem },
    basicAuth: { user: 'admin', password: 'pw' },
  });
  registry = await startRegistry();
  await pushContainerDisk({ registry, target: 'vm/disk:v1', diskFile: qcow2, workDir: tmp.dir });
  env = await startControllerEnv();
});

afterAll(async () => {
  await env?.stop();
  await files?.close();
  await s3?.close();
  await registry?.close();
  await secure?.close();
  await tls?.cleanup();
  await tmp?.cleanup();
});

describe('DataVolume imports', () => {
  it('v1alpha1 DataVolume, http qcow2, pvc API', async () => {
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1alpha1
kind: DataVolume
metadata:
  name: alpha-qcow2
spec:
  source:
    http:
      url: ${files.origin}/disk.qcow2
  pvc:
    accessModes:
      - ReadWriteOnce
    resources:
      requests:
        storage: 64Mi
`,
    );
    const dv = await waitForPhase(env, 'default', 'alpha-qcow2', 'Succeeded');
    expect(dv.status?.progress).toBe('100.0%');
    expect(dv.status?.conditions?.map((c) => `${c.type}=${c.status}:${c.reason ?? ''}`)).toEqual([
      'Ready=True:',
      'Bound=True:Bound',
      'Running=False:Completed',
    ]);
    expect(await sameDisk(rawRef, await volumeData(env, 'default', 'alpha-qcow2'))).toBe(true);
    // The importer pod is gone after success.
    const pods = await env.core.listNamespacedPod({ namespace: 'default' });
    expect(pods.items.map((p) => p.metadata?.name)).not.toContain('importer-alpha-qcow2');
  });

  it('v1beta1 DataVolume, storage API, xz-compressed raw', async () => {
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: beta-xz
spec:
  source:
    http:
      url: ${files.origin}/disk.raw.xz
  storage:
    resources:
      requests:
        storage: 64Mi
`,
    );
    await waitForPhase(env, 'default', 'beta-xz', 'Succeeded');
    const pvc = await env.core.readNamespacedPersistentVolumeClaim({
      namespace: 'default',
      name: 'beta-xz',
    });
    // The storage API inflates the request by the 6% filesystem overhead.
    expect(pvc.spec?.resources?.requests?.['storage']).toBe(String(Math.ceil(64 * MIB * 1.06)));
    expect(pvc.metadata?.ownerReferences?.[0]?.kind).toBe('DataVolume');
    expect(await sameDisk(rawRef, await volumeData(env, 'default', 'beta-xz'))).toBe(true);
  });

  it('blank DataVolume', async () => {
    await apply(env, blankDvManifest('blank'));
    await waitForPhase(env, 'default', 'blank', 'Succeeded');
    const info = JSON.parse(
      await qemuImg('info', '--output=json', await volumeData(env, 'default', 'blank')),
    ) as { 'virtual-size': number; format: string };
    expect(info.format).toBe('raw');
    expect(info['virtual-size']).toBeGreaterThanOrEqual(16 * MIB);
  });

  it('block-mode target', async () => {
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: block-qcow2
spec:
  source:
    http:
      url: ${files.origin}/disk.qcow2
  storage:
    volumeMode: Block
    resources:
      requests:
        storage: 32Mi
`,
    );
    expect(await succeededWithDisk(env, 'default', 'block-qcow2', rawRef)).toBe(true);
  });

  it('S3 source with credentials from a Secret', async () => {
    const b64 = Buffer.from(S3_KEY).toString('base64');
    await apply(
      env,
      `apiVersion: v1
kind: Secret
metadata:
  name: s3-creds
type: Opaque
data:
  accessKeyId: ${b64}
  secretKey: ${b64}
---
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: from-s3
spec:
  source:
    s3:
      url: ${s3Endpoint}/images/vm/disk.qcow2
      secretRef: s3-creds
  storage:
    resources:
      requests:
        storage: 64Mi
`,
    );
    expect(await succeededWithDisk(env, 'default', 'from-s3', rawRef)).toBe(true);
  });

  it('registry source (container disk), plain-HTTP registry listed in CDIConfig insecureRegistries', async () => {
    const patch = JSON.stringify({ spec: { insecureRegistries: [registry.host] } });
    const r = await kubectl(env.sandbox, [
      'patch',
      'cdiconfig',
      'config',
      '--type=merge',
      '-p',
      patch,
    ]);
    expect(r.stderr).toBe('');
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: from-registry
spec:
  source:
    registry:
      url: docker://${registry.host}/vm/disk:v1
  storage:
    resources:
      requests:
        storage: 64Mi
`,
    );
    expect(await succeededWithDisk(env, 'default', 'from-registry', rawRef)).toBe(true);
  });

  it('https with a CA ConfigMap and basic auth from a Secret, and from an extra header', async () => {
    const b64 = (t: string): string => Buffer.from(t).toString('base64');
    const ca = tls.caPem
      .trim()
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n');
    await apply(
      env,
      `apiVersion: v1
kind: ConfigMap
metadata:
  name: file-host-ca
data:
  ca.pem: |
${ca}
---
apiVersion: v1
kind: Secret
metadata:
  name: file-host-auth
data:
  accessKeyId: ${b64('admin')}
  secretKey: ${b64('pw')}
---
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: https-secret
spec:
  source:
    http:
      url: ${secure.origin}/disk.qcow2
      certConfigMap: file-host-ca
      secretRef: file-host-auth
  storage:
    resources:
      requests:
        storage: 64Mi
---
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: https-header
spec:
  source:
    http:
      url: ${secure.origin}/disk.qcow2
      certConfigMap: file-host-ca
      extraHeaders:
        - "Authorization: Basic ${b64('admin:pw')}"
  storage:
    resources:
      requests:
        storage: 64Mi
`,
    );
    await waitForPhase(env, 'default', 'https-secret', 'Succeeded');
    await waitForPhase(env, 'default', 'https-header', 'Succeeded');
    expect(await sameDisk(rawRef, await volumeData(env, 'default', 'https-secret'))).toBe(true);
    expect(await sameDisk(rawRef, await volumeData(env, 'default', 'https-header'))).toBe(true);
  });

  it('annotated bare PVC, no DataVolume', async () => {
    await apply(
      env,
      `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: bare
  annotations:
    cdi.kubevirt.io/storage.import.endpoint: ${files.origin}/disk.qcow2
    cdi.kubevirt.io/storage.import.source: http
    cdi.kubevirt.io/storage.contentType: kubevirt
spec:
  accessModes:
    - ReadWriteOnce
  resources:
    requests:
      storage: 64Mi
`,
    );
    const pvc = await waitForPvc(
      env,
      'default',
      'bare',
      (p) => p.metadata?.annotations?.[Annotations.PodPhase] === 'Succeeded',
    );
    expect(pvc.metadata?.annotations?.[Annotations.ImportPodName]).toBe('importer-bare');
    expect(pvc.metadata?.annotations?.[Annotations.RunningConditionReason]).toBe('Completed');
    expect(await sameDisk(rawRef, await volumeData(env, 'default', 'bare'))).toBe(true);
  });
});
