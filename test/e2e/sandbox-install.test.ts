// SPDX-License-Identifier: Apache-2.0
/**
 * The one-step install, as a cluster admin does it: a fresh sandbox with runc pods gets
 * `kubectl apply -k deploy/` once; the Deployment controller runs the controller, token API and
 * upload proxy from the cdi image with in-cluster configuration (the `kubernetes` Service and the
 * projected service-account volume, no kubeconfig); the CDI resource reads Deployed; the
 * controller imports an HTTP qcow2 DataVolume through an importer pod (the disk compared with
 * qemu-img's raw conversion); `kubectl delete -k deploy/` removes everything again; installed
 * again, a CDI resource switched to BlockUninstallIfWorkloadsExist is only deleted once no
 * DataVolume is left.
 */
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeQcow2Disk, makeTempDir } from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { buildImageOnce } from '../containers/image-build.js';
import {
  defaultImageArchive,
  FAST_RESTART_BACKOFF,
  repoRoot,
  startSandbox,
  type Sandbox,
} from '../sandbox/index.js';
import { SERVICE_ACCOUNT_DIR } from '../sandbox/service-accounts.js';
import { kubeConfigFor, kubectl } from '../sandbox/testing.js';
import { httpDvManifest, sameDisk, volumeData, waitForPhase } from './controller-harness.js';

const MiB = 1024 * 1024;

let sandbox: Sandbox;
let kc: KubeConfig;
let core: CoreV1Api;
let files: TestHttpServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let raw: string;

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await kubectl(sandbox, args, input === undefined ? {} : { input });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

/** The jsonpath of one object, '' when absent. */
async function jsonpath(kind: string, name: string, path: string): Promise<string> {
  return (await kubectl(sandbox, ['get', kind, name, '-o', `jsonpath=${path}`])).stdout;
}

/** Polls `check` (up to 60 s). */
async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect.fail('condition not reached within 60 s');
}

beforeAll(async () => {
  const image =
    process.env['CDI_E2E_IMAGE'] ??
    (await buildImageOnce(repoRoot(), defaultImageArchive(), (l) => console.log(l)));
  tmp = await makeTempDir('cdi-e2e-install-');
  const { qcow2, reference } = await makeQcow2Disk(tmp.dir, 'disk', 24 * MiB, [
    { offset: 0, length: 2 * MiB, seed: 3 },
    { offset: 12 * MiB, length: 3 * MiB, seed: 4 },
  ]);
  raw = reference;
  files = await startTestHttpServer({ files: { '/disk.qcow2': { path: qcow2 } } });
  sandbox = await startSandbox({
    podRuntime: 'runc',
    image,
    install: true,
    restartBackoff: FAST_RESTART_BACKOFF,
  });
  kc = kubeConfigFor(sandbox);
  core = kc.makeApiClient(CoreV1Api);
}, 600_000);

afterAll(async () => {
  await files?.close();
  await sandbox?.stop();
  await tmp?.cleanup();
});

describe('kubectl apply -k deploy/ on a fresh sandbox (runc pods)', () => {
  it('runs the three Deployments from their pod templates with in-cluster configuration', async () => {
    expect(sandbox.podRuntime).toBe('runc');
    for (const d of ['cdi-deployment', 'cdi-apiserver', 'cdi-uploadproxy'])
      expect(
        await ok(['-n', 'cdi', 'rollout', 'status', `deployment/${d}`, '--timeout=60s']),
      ).toContain('successfully rolled out');
    const pods = await core.listNamespacedPod({
      namespace: 'cdi',
      labelSelector: 'cdi.kubevirt.io=cdi-controller',
    });
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0];
    const container = pod?.spec?.containers[0];
    // The pod template as written: no kubeconfig flag, the account's volume added by admission.
    expect(container?.args).toEqual(['controller', '-v', '1']);
    expect(container?.volumeMounts?.map((m) => m.mountPath)).toContain(SERVICE_ACCOUNT_DIR);
    expect(pod?.metadata?.labels?.['pod-template-hash']).toMatch(/^[a-z0-9]{10}$/);
    expect(pod?.metadata?.ownerReferences?.[0]?.kind).toBe('ReplicaSet');
    // It reached the API through the kubernetes Service, as the in-cluster loader does.
    const kubernetes = await core.readNamespacedService({
      name: 'kubernetes',
      namespace: 'default',
    });
    const log = await ok(['logs', '-n', 'cdi', pod?.metadata?.name ?? '']);
    expect(log).toContain(`"server":"https://${kubernetes.spec?.clusterIP ?? ''}:443"`);
    expect(sandbox.metricsUrl).toMatch(/^http:\/\/127\.\d+\.\d+\.\d+:8080\/metrics$/);
    const metrics = await fetch(sandbox.metricsUrl ?? '');
    expect(await metrics.text()).toContain('kubevirt_cdi_cr_ready');
  });

  it('shows the CDI resource Deployed', async () => {
    let phase = '';
    for (let i = 0; i < 300 && phase !== 'Deployed'; i++) {
      phase = await ok(['get', 'cdi', 'cdi', '-o', 'jsonpath={.status.phase}']);
      if (phase !== 'Deployed') await new Promise((r) => setTimeout(r, 100));
    }
    expect(phase).toBe('Deployed');
  });

  it('imports an HTTP qcow2 DataVolume through the installed controller', async () => {
    await ok(['apply', '-f', '-'], httpDvManifest('installed-http', files.url('/disk.qcow2')));
    await waitForPhase({ kc, core }, 'default', 'installed-http', 'Succeeded', 180_000);
    expect(await sameDisk(raw, await volumeData({ kc, core }, 'default', 'installed-http'))).toBe(
      true,
    );
  });

  it('uninstalls with kubectl delete -k deploy/', async () => {
    await ok(['delete', 'dv', 'installed-http']);
    const out = await ok(['delete', '-k', join(repoRoot(), 'deploy')]);
    expect(out).toContain('deployment.apps "cdi-deployment" deleted');
    expect(out).toContain('cdi.cdi.kubevirt.io "cdi" deleted');
    const left = await kubectl(sandbox, ['get', 'namespace', 'cdi']);
    expect(left.stderr).toContain('NotFound');
    // The cluster's own CRDs (the sandbox's VolumeSnapshot API) stay; none of CDI's may.
    const crds = (await ok(['get', 'crd', '-o', 'name'])).trim().split('\n').filter(Boolean);
    expect(crds.filter((name) => name.includes('kubevirt.io'))).toEqual([]);
    expect(crds.every((name) => name.endsWith('.snapshot.storage.k8s.io'))).toBe(true);
    expect((await ok(['get', 'pods', '-A', '-o', 'name'])).trim()).toBe('');
  });

  it('installs again, and holds the uninstall under BlockUninstallIfWorkloadsExist while a DataVolume exists', async () => {
    await ok(['apply', '-k', join(repoRoot(), 'deploy')]);
    for (const d of ['cdi-deployment', 'cdi-apiserver', 'cdi-uploadproxy'])
      await ok(['-n', 'cdi', 'rollout', 'status', `deployment/${d}`, '--timeout=120s']);
    await until(async () => (await jsonpath('cdi', 'cdi', '{.status.phase}')) === 'Deployed');
    await ok([
      'patch',
      'cdi',
      'cdi',
      '--type',
      'merge',
      '-p',
      '{"spec":{"uninstallStrategy":"BlockUninstallIfWorkloadsExist"}}',
    ]);
    await until(async () =>
      (await jsonpath('cdi', 'cdi', '{.metadata.finalizers}')).includes('operator.cdi.kubevirt.io'),
    );
    await ok(
      ['apply', '-f', '-'],
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: { name: keeps-cdi }
spec:
  source: { blank: {} }
  storage: { resources: { requests: { storage: 16Mi } } }
`,
    );
    await ok(['delete', 'cdi', 'cdi', '--wait=false']);
    const degraded = '{.status.conditions[?(@.type=="Degraded")].message}';
    await until(async () =>
      (await jsonpath('cdi', 'cdi', degraded)).includes('rejecting the uninstall request'),
    );
    expect(await jsonpath('cdi', 'cdi', degraded)).toBe(
      'rejecting the uninstall request, since there are still 1 DataVolumes present. ' +
        'Either delete all DataVolumes or change the uninstall strategy before uninstalling CDI',
    );
    await ok(['delete', 'dv', 'keeps-cdi']);
    await until(async () =>
      (await kubectl(sandbox, ['get', 'cdi', 'cdi'])).stderr.includes('NotFound'),
    );
  });
});
