// SPDX-License-Identifier: Apache-2.0
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadKubeConfig } from './kube-client.js';

let dir: string;

function kubeconfig(server: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server } }],
    users: [{ name: 'u', user: { token: 't' } }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'x',
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kube-client-'));
  await writeFile(join(dir, 'flag'), kubeconfig('https://flag.example:6443'));
  await writeFile(join(dir, 'env'), kubeconfig('https://env.example:6443'));
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await rm(dir, { recursive: true, force: true });
});

describe('loadKubeConfig', () => {
  // File names relative to the temp dir (the table is read before it exists).
  it.each([
    { what: 'the file given wins', file: 'flag', env: 'env', server: 'flag' },
    { what: 'else KUBECONFIG (its first file)', file: undefined, env: ':env:x', server: 'env' },
  ])('$what', ({ file, env, server }) => {
    const kubeconfigEnv = env
      .split(':')
      .map((f) => (f === '' ? '' : join(dir, f)))
      .join(':');
    const kc = loadKubeConfig(file === undefined ? undefined : join(dir, file), {
      KUBECONFIG: kubeconfigEnv,
    });
    expect(kc.getCurrentCluster()?.server).toBe(`https://${server}.example:6443`);
  });

  it('else the in-cluster service account through the kubernetes Service', () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '10.96.0.1');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '443');
    const kc = loadKubeConfig(undefined, {});
    expect(kc.getCurrentCluster()).toMatchObject({
      server: 'https://10.96.0.1:443',
      caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    });
  });
});
