// SPDX-License-Identifier: Apache-2.0
/**
 * Secret, ConfigMap and projected volumes as files: key paths (`items`), modes (`defaultMode`,
 * item `mode`), a projected service-account token that authenticates as the pod's account, and
 * a DataVolume's `secretExtraHeaders` really arriving at the HTTP server.
 */
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRawImage, makeTempDir } from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { kubectl, waitForObject } from '../sandbox/testing.js';
import {
  apply,
  httpDvManifest,
  startControllerEnv,
  waitForPhase,
  type ControllerEnv,
} from './controller-harness.js';

const MIB = 1024 * 1024;
let env: ControllerEnv;
let files: TestHttpServer;
let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await makeTempDir('cdi-e2e-secretvol-');
  const raw = await makeRawImage(join(tmp.dir, 'disk.raw'), 2 * MIB, [
    { offset: 0, length: MIB, seed: 5 },
  ]);
  files = await startTestHttpServer({ files: { '/disk.raw': { path: raw } } });
  env = await startControllerEnv();
});

afterAll(async () => {
  await env.stop();
  await files.close();
  await tmp.cleanup();
});

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await kubectl(env.sandbox, args, input === undefined ? {} : { input });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

describe('Secret and ConfigMap volumes', () => {
  it('writes keys at their item paths with their modes, and a projected token', async () => {
    await ok([
      'create',
      'secret',
      'generic',
      'keys',
      '--from-literal=a=alpha',
      '--from-literal=b=beta',
    ]);
    await ok(['create', 'configmap', 'conf', '--from-literal=mode=fast']);
    await ok(['create', 'serviceaccount', 'reader']);
    await apply(
      env,
      `apiVersion: v1
kind: Pod
metadata:
  name: files
spec:
  restartPolicy: Never
  serviceAccountName: reader
  containers:
    - name: main
      image: busybox
      command:
        - sh
        - -c
        - |
          cd "$S" && stat -c '%n %a' b nested/a-file
          cat nested/a-file; echo
          cd "$C" && stat -c '%n %a' mode && cat mode; echo
          cd "$T" && stat -c '%n %a' token namespace
          cat namespace; echo
          cat token
      env:
        - { name: S, value: /etc/keys }
        - { name: C, value: /etc/conf }
        - { name: T, value: /var/run/secrets/tokens }
      volumeMounts:
        - { name: keys, mountPath: /etc/keys }
        - { name: conf, mountPath: /etc/conf }
        - { name: tok, mountPath: /var/run/secrets/tokens }
  volumes:
    - name: keys
      secret:
        secretName: keys
        defaultMode: 0440
        items:
          - { key: a, path: nested/a-file, mode: 0400 }
          - { key: b, path: b }
    - name: conf
      configMap: { name: conf }
    - name: tok
      projected:
        sources:
          - serviceAccountToken: { path: token, expirationSeconds: 3600 }
          - downwardAPI:
              items:
                - { path: namespace, fieldRef: { fieldPath: metadata.namespace } }
`,
    );
    await waitForObject<V1Pod>(env.kc, {
      path: '/api/v1/namespaces/default/pods',
      name: 'files',
      until: (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed',
    });
    const lines = (await ok(['logs', 'files'])).trim().split('\n');
    expect(lines.slice(0, 7)).toEqual([
      'b 440',
      'nested/a-file 400',
      'alpha',
      'mode 644',
      'fast',
      'token 644',
      'namespace 644',
    ]);
    expect(lines[7]).toBe('default');
    const token = lines[8] ?? '';
    expect(
      await ok(['auth', 'whoami', '--token', token, '-o', 'jsonpath={.status.userInfo.username}']),
    ).toBe('system:serviceaccount:default:reader');
  });

  it('sends the secretExtraHeaders of a DataVolume to the HTTP server', async () => {
    await apply(
      env,
      `apiVersion: v1
kind: Secret
metadata:
  name: hdrs
stringData:
  token: "X-Auth-Token: s3cr3t"
  tenant: "X-Tenant: blue"
---
${httpDvManifest('with-headers', `${files.origin}/disk.raw`, '      secretExtraHeaders: [hdrs]\n')}`,
    );
    await waitForPhase(env, 'default', 'with-headers', 'Succeeded');
    const gets = files.requests.filter((r) => r.method === 'GET' && r.url === '/disk.raw');
    expect(gets.length).toBeGreaterThan(0);
    for (const g of gets) {
      expect(g.headers['x-auth-token']).toBe('s3cr3t');
      expect(g.headers['x-tenant']).toBe('blue');
    }
  });
});
