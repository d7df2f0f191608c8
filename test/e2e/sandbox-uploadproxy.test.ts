// SPDX-License-Identifier: Apache-2.0
/**
 * The upload path wired into the sandbox: the proxy (`--upload-server-address cluster-ip`) finds
 * an upload server pod made by hand (pod + Service + Secret from a seeded PKI, as the controller
 * will make them) through its Service's clusterIP, checks its certificate against the Service's
 * DNS name, and a raw image uploaded with curl lands byte-identical on the PV.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1PersistentVolumeClaim,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Annotations, UPLOAD_CLIENT_NAME, UploadServerEnv } from '../../common/contract.js';
import { kubeUploadResolver } from '../../uploadproxy/proxy/kube-resolver.js';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubeConfigFor, kubectl, waitForObject } from '../sandbox/testing.js';
import type { SeededUploadPki } from '../sandbox/upload-pki-seed.js';
import { startSeededSandbox, type SeededSandbox } from './seeded-sandbox.js';

const run = promisify(execFile);
const NS = 'default';

let sandbox: Sandbox;
let kc: KubeConfig;
let core: CoreV1Api;
let seeded: SeededSandbox;
let pki: SeededUploadPki;

beforeAll(async () => {
  seeded = await startSeededSandbox();
  ({ sandbox, pki } = seeded);
  kc = kubeConfigFor(sandbox);
  core = kc.makeApiClient(CoreV1Api);
});

afterAll(async () => {
  await seeded.stop();
});

async function createUploadPvc(name: string): Promise<void> {
  await core.createNamespacedPersistentVolumeClaim({
    namespace: NS,
    body: {
      metadata: {
        name,
        annotations: { [Annotations.UploadTarget]: '', [Annotations.ContentType]: 'kubevirt' },
      },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '64Mi' } } },
    },
  });
}

/** What the controller does once the upload pod is ready. */
async function markReady(pvc: string): Promise<void> {
  await core.patchNamespacedPersistentVolumeClaim(
    {
      name: pvc,
      namespace: NS,
      body: { metadata: { annotations: { [Annotations.PodReady]: 'true' } } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

/** What the controller will create for an upload PVC, made by hand. */
async function createUploadServer(pvc: string): Promise<void> {
  const name = `cdi-upload-${pvc}`;
  const cert = await pki.issueUploadServerCert(NS, pvc);
  await core.createNamespacedSecret({
    namespace: NS,
    body: {
      metadata: { name },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': cert.certPem, 'tls.key': cert.keyPem },
    },
  });
  await core.createNamespacedConfigMap({
    namespace: NS,
    body: { metadata: { name: `${name}-client-ca` }, data: { 'ca.crt': pki.uploadClientCaPem } },
  });
  const pod: V1Pod = {
    metadata: { name, labels: { service: name } },
    spec: {
      restartPolicy: 'OnFailure',
      containers: [
        {
          name: 'cdi-upload-server',
          image: 'cdi-ts/cdi:latest',
          command: ['cdi', 'uploadserver'],
          env: [
            { name: UploadServerEnv.TlsKeyFile, value: '/etc/tls/tls.key' },
            { name: UploadServerEnv.TlsCertFile, value: '/etc/tls/tls.crt' },
            { name: UploadServerEnv.ClientCertFile, value: '/etc/client/ca.crt' },
            { name: UploadServerEnv.ClientName, value: UPLOAD_CLIENT_NAME },
            { name: UploadServerEnv.FilesystemOverhead, value: '0' },
          ],
          ports: [{ name: 'https', containerPort: 8443 }],
          readinessProbe: {
            httpGet: { path: '/healthz', port: 8443, scheme: 'HTTPS' },
            periodSeconds: 1,
          },
          volumeMounts: [
            { name: 'data', mountPath: '/data' },
            { name: 'tls', mountPath: '/etc/tls' },
            { name: 'client', mountPath: '/etc/client' },
          ],
        },
      ],
      volumes: [
        { name: 'data', persistentVolumeClaim: { claimName: pvc } },
        { name: 'tls', secret: { secretName: name } },
        { name: 'client', configMap: { name: `${name}-client-ca` } },
      ],
    },
  };
  await core.createNamespacedPod({ namespace: NS, body: pod });
}

async function createUploadService(pvc: string): Promise<void> {
  const name = `cdi-upload-${pvc}`;
  await core.createNamespacedService({
    namespace: NS,
    body: {
      metadata: { name },
      spec: {
        selector: { service: name },
        ports: [{ name: 'https', port: 8443, targetPort: 8443 }],
      },
    },
  });
}

async function mintToken(pvc: string): Promise<string> {
  const answer = (await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: 'upload.cdi.kubevirt.io',
    version: 'v1beta1',
    namespace: NS,
    plural: 'uploadtokenrequests',
    body: {
      apiVersion: 'upload.cdi.kubevirt.io/v1beta1',
      kind: 'UploadTokenRequest',
      metadata: { name: pvc },
      spec: { pvcName: pvc },
    },
  })) as { status?: { token?: string } };
  return answer.status?.token ?? '';
}

describe('upload path in the sandbox', () => {
  it('without the PKI, the sandbox fails to start, naming what is missing', async () => {
    const started = startSandbox({ uploadProxy: true, pkiTimeoutMs: 300 });
    await expect(started).rejects.toThrow(
      /still missing after 300 ms: Secret cdi\/cdi-api-signing-key \(id_rsa, id_rsa\.pub\);.*ConfigMap cdi\/cdi-uploadserver-signer-bundle \(ca-bundle\.crt\)$/,
    );
    await expect(started).rejects.not.toThrow(/extension-apiserver-authentication/);
  });

  it('runs the proxy at the URL CDIConfig names', async () => {
    expect(sandbox.uploadProxyUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await kubectl(sandbox, [
      ...['get', 'cdiconfig', 'config', '-o', 'jsonpath={.spec.uploadProxyURLOverride}'],
    ]);
    expect(r.stdout).toBe(sandbox.uploadProxyUrl);
  });

  it('the cluster-ip resolver waits for the Service, then names its clusterIP and DNS name', async () => {
    await createUploadPvc('probe');
    await markReady('probe');
    const resolve = kubeUploadResolver(kc, { address: 'cluster-ip' });
    const target = { namespace: NS, pvc: 'probe' };
    const signal = new AbortController().signal;
    expect(await resolve(target, signal)).toMatchObject({ ready: false });
    await createUploadService('probe');
    const svc = await core.readNamespacedService({ name: 'cdi-upload-probe', namespace: NS });
    expect(await resolve(target, signal)).toEqual({
      url: `https://${svc.spec?.clusterIP ?? ''}:8443`,
      ready: true,
      servername: 'cdi-upload-probe.default.svc',
      contentType: 'kubevirt',
    });
    expect(await kubeUploadResolver(kc).call(undefined, target, signal)).toMatchObject({
      url: 'https://cdi-upload-probe.default.svc:8443',
    });
  });

  it('a raw image uploaded with curl lands byte-identical on the PV', async () => {
    const pvc = 'disk';
    await createUploadPvc(pvc);
    await createUploadServer(pvc);
    await waitForObject<V1Pod>(kc, {
      path: `/api/v1/namespaces/${NS}/pods`,
      name: `cdi-upload-${pvc}`,
      until: (p) =>
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    });
    await createUploadService(pvc);
    await markReady(pvc);
    const work = await mkdtemp(join(sandbox.dataDir, 'upload-'));
    const image = Buffer.concat([randomBytes(3 << 20), Buffer.alloc(1 << 20), randomBytes(4096)]);
    await writeFile(join(work, 'disk.raw'), image);
    await writeFile(join(work, 'ca.crt'), sandbox.caPem);
    const token = await mintToken(pvc);
    expect(token).not.toBe('');
    const { stdout } = await run('curl', [
      ...['-sS', '--fail-with-body', '--cacert', join(work, 'ca.crt')],
      ...['-H', `Authorization: Bearer ${token}`, '-o', '/dev/null', '-w', '%{http_code}'],
      ...['--data-binary', `@${join(work, 'disk.raw')}`],
      `${sandbox.uploadProxyUrl ?? ''}/v1beta1/upload`,
    ]);
    expect(stdout).toBe('200');
    const claim = await waitForObject<V1PersistentVolumeClaim>(kc, {
      path: `/api/v1/namespaces/${NS}/persistentvolumeclaims`,
      name: pvc,
      until: (c) => c.spec?.volumeName !== undefined,
    });
    const pv = await core.readPersistentVolume({ name: claim.spec?.volumeName ?? '' });
    const written = await readFile(join(pv.spec?.hostPath?.path ?? '', 'disk.img'));
    expect(written.length).toBe(image.length);
    expect(written.equals(image)).toBe(true);
    await waitForObject<V1Pod>(kc, {
      path: `/api/v1/namespaces/${NS}/pods`,
      name: `cdi-upload-${pvc}`,
      until: (p) => p.status?.phase === 'Succeeded',
    });
  });
});
