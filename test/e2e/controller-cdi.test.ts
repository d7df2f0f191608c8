// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: the `CDI` resource configures the controller as CDI's operator does. Applied with
 * CDI's release fields, it reads Deployed/Available; the docs' `kubectl patch cdi cdi --type merge`
 * changes the upload proxy URL the CDIConfig reports and turns HonorWaitForFirstConsumer off, after
 * which a DataVolume on a WaitForFirstConsumer class imports without a consumer pod; and with
 * `uninstallStrategy: BlockUninstallIfWorkloadsExist` deleting it waits until no DataVolume is
 * left.
 */
import { X509Certificate } from 'node:crypto';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CDI_CONFIG_NAME,
  CDI_GROUP,
  CDI_VERSION,
  type CdiConfig,
} from '../../common/api/datavolume.js';
import { CDI_FINALIZER, CONFIG_AUTHORITY_ANNOTATION } from '../../controller/cdi/decide.js';
import type { Cdi } from '../../controller/cdi/types.js';
import { CERT_CONFIG_ANNOTATION } from '../../common/cert-config.js';
import { CDI_NAMESPACE } from '../sandbox/upload-wiring.js';
import { kubectl, waitForDeletion, waitForObject } from '../sandbox/testing.js';
import {
  apply,
  httpDvManifest,
  startControllerEnv,
  startSlowDiskFixture,
  waitForPhase,
  waitForPod,
  type ControllerEnv,
  type SlowDiskFixture,
} from './controller-harness.js';

const API = `/apis/${CDI_GROUP}/${CDI_VERSION}`;
let env: ControllerEnv;
let disk: SlowDiskFixture;

function waitForCdi(until: (c: Cdi) => boolean, timeoutMs = 30_000): Promise<Cdi> {
  return waitForObject<KubernetesObject>(env.kc, {
    path: `${API}/cdis`,
    name: 'cdi',
    until: (o) => until(o as Cdi),
    timeoutMs,
  }) as Promise<Cdi>;
}

function waitForConfig(until: (c: CdiConfig) => boolean): Promise<CdiConfig> {
  return waitForObject<KubernetesObject>(env.kc, {
    path: `${API}/cdiconfigs`,
    name: CDI_CONFIG_NAME,
    until: (o) => until(o as CdiConfig),
    timeoutMs: 30_000,
  }) as Promise<CdiConfig>;
}

function blankDv(name: string, storageClass: string): string {
  return [
    'apiVersion: cdi.kubevirt.io/v1beta1',
    'kind: DataVolume',
    `metadata: {name: ${name}, namespace: default}`,
    'spec:',
    '  source: {blank: {}}',
    `  storage: {storageClassName: ${storageClass}, resources: {requests: {storage: 16Mi}}}`,
  ].join('\n');
}

async function ok(args: string[]): Promise<void> {
  const r = await kubectl(env.sandbox, args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
}

const condition = (c: Cdi, type: string): string | undefined =>
  c.status?.conditions?.find((x) => x.type === type)?.status;

beforeAll(async () => {
  env = await startControllerEnv();
  // 16 MiB at 1 MiB/s: the importer pod runs long enough to be read.
  disk = await startSlowDiskFixture('cdi-resource-', 1024 * 1024);
});

afterAll(async () => {
  await env?.stop();
  await disk?.close();
});

describe('the CDI resource', () => {
  it('accepts CDI’s release fields and reads Deployed and Available', async () => {
    await apply(
      env,
      [
        'apiVersion: cdi.kubevirt.io/v1beta1',
        'kind: CDI',
        'metadata: {name: cdi}',
        'spec:',
        '  imagePullPolicy: IfNotPresent',
        '  uninstallStrategy: BlockUninstallIfWorkloadsExist',
        '  infra:',
        '    nodeSelector: {kubernetes.io/os: linux}',
        '    tolerations: [{key: CriticalAddonsOnly, operator: Exists}]',
        '  workload:',
        '    nodeSelector: {kubernetes.io/os: linux}',
        '  certConfig:',
        '    ca: {duration: 48h, renewBefore: 24h}',
        '    server: {duration: 24h, renewBefore: 12h}',
        '  config:',
        '    featureGates: [HonorWaitForFirstConsumer]',
      ].join('\n'),
    );
    const cdi = await waitForCdi(
      (c) => c.status?.phase === 'Deployed' && condition(c, 'Available') === 'True',
    );
    expect(cdi.metadata.finalizers).toContain(CDI_FINALIZER);
    expect(cdi.metadata.annotations?.[CONFIG_AUTHORITY_ANNOTATION]).toBe('');
    // Fields the API server would have pruned had the schema not declared them.
    expect(cdi.spec?.infra?.tolerations).toEqual([
      { key: 'CriticalAddonsOnly', operator: 'Exists' },
    ]);
    expect(cdi.spec?.certConfig?.ca).toEqual({ duration: '48h', renewBefore: '24h' });
    expect([condition(cdi, 'Progressing'), condition(cdi, 'Degraded')]).toEqual(['False', 'False']);
  });

  it('certConfig sets the lifetimes of the certificates the controller issues', async () => {
    // Applied by the first test: ca 48h (renew 24h before), server 24h (renew 12h before).
    const validHours = async (name: string): Promise<number> => {
      const s = await waitForObject<V1Secret>(env.kc, {
        path: `/api/v1/namespaces/${CDI_NAMESPACE}/secrets`,
        name,
        until: (o) => o.metadata?.annotations?.[CERT_CONFIG_ANNOTATION] !== undefined,
        timeoutMs: 30_000,
      });
      const pem = Buffer.from(s.data?.['tls.crt'] ?? '', 'base64').toString();
      const cert = new X509Certificate(pem);
      // issueCertificate backdates notBefore by five minutes.
      return Math.round((Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 3_600_000);
    };
    const want = { 'cdi-apiserver-signer': 48, 'cdi-apiserver-server-cert': 24 };
    await expect
      .poll(
        async () => ({
          'cdi-apiserver-signer': await validHours('cdi-apiserver-signer'),
          'cdi-apiserver-server-cert': await validHours('cdi-apiserver-server-cert'),
        }),
        { timeout: 30_000, interval: 500 },
      )
      .toEqual(want);
  });

  it('`kubectl patch cdi cdi` sets the upload proxy URL the CDIConfig reports', async () => {
    await ok([
      'patch',
      'cdi',
      'cdi',
      '--type',
      'merge',
      '-p',
      '{"spec":{"config":{"uploadProxyURLOverride":"https://upload.example.test"}}}',
    ]);
    const config = await waitForConfig(
      (c) => c.status?.uploadProxyURL === 'https://upload.example.test',
    );
    expect(config.spec?.featureGates).toEqual(['HonorWaitForFirstConsumer']);
  });

  it('HonorWaitForFirstConsumer on: waits for a consumer; off: imports at once', async () => {
    await apply(env, blankDv('wffc-honoured', 'wffc'));
    await waitForPhase(env, 'default', 'wffc-honoured', 'WaitForFirstConsumer');

    await ok([
      'patch',
      'cdi',
      'cdi',
      '--type',
      'merge',
      '-p',
      '{"spec":{"config":{"featureGates":[]}}}',
    ]);
    await waitForConfig((c) => JSON.stringify(c.spec?.featureGates) === '[]');
    await apply(env, blankDv('wffc-ignored', 'wffc'));
    await waitForPhase(env, 'default', 'wffc-ignored', 'Succeeded', 120_000);
    const first = await env.core.readNamespacedPersistentVolumeClaim({
      namespace: 'default',
      name: 'wffc-honoured',
    });
    expect(first.status?.phase).toBe('Pending');
  });

  it('workload placement and the DataVolume’s Multus network reach the importer pod', async () => {
    await apply(
      env,
      httpDvManifest('placed', disk.slow.url('/disk.raw'), '').replace(
        'metadata:\n  name: placed\n',
        "metadata:\n  name: placed\n  annotations:\n    k8s.v1.cni.cncf.io/networks: 'storage-net'\n",
      ),
    );
    const pod = await waitForPod(env, 'default', 'importer-placed', () => true);
    expect(pod.spec?.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(pod.metadata?.annotations?.['k8s.v1.cni.cncf.io/networks']).toBe('storage-net');
    await ok(['delete', 'datavolume', 'placed']);
  });

  it('BlockUninstallIfWorkloadsExist holds deletion until no DataVolume is left', async () => {
    await ok(['delete', 'cdi', 'cdi', '--wait=false']);
    const held = await waitForCdi(
      (c) => c.status?.phase === 'Deleting' && condition(c, 'Degraded') === 'True',
    );
    expect(held.status?.conditions?.find((c) => c.type === 'Degraded')?.message).toBe(
      'rejecting the uninstall request, since there are still 2 DataVolumes present. ' +
        'Either delete all DataVolumes or change the uninstall strategy before uninstalling CDI',
    );
    await ok(['delete', 'datavolume', 'wffc-honoured', 'wffc-ignored', '--wait=false']);
    await waitForDeletion(env.kc, `${API}/cdis`, {
      apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
      kind: 'CDI',
      name: 'cdi',
    });
  });
});
