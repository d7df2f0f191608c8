// SPDX-License-Identifier: Apache-2.0
/**
 * The real kubectl against the sandbox: apply the deploy/ CRDs and a DataVolume, get in every
 * output form and with the DataVolume printer columns, patch (spec and status), label, wait for
 * a jsonpath condition, watch with get -w, and delete.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, startSandbox, type Sandbox } from '../sandbox/index.js';
import { KUBECTL, kubectl } from '../sandbox/testing.js';

let sandbox: Sandbox;

const DV = `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: fedora
  labels:
    app: demo
spec:
  source:
    http:
      url: http://127.0.0.1:1/disk.qcow2
  storage:
    resources:
      requests:
        storage: 64Mi
`;

beforeAll(async () => {
  sandbox = await startSandbox();
});

afterAll(async () => {
  await sandbox.stop();
});

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await kubectl(sandbox, args, input === undefined ? {} : { input });
  expect(r.stderr).not.toMatch(/error/i);
  expect(r.code).toBe(0);
  return r.stdout;
}

async function setStatus(status: Record<string, unknown>): Promise<void> {
  await ok([
    'patch',
    'dv',
    'fedora',
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
  ]);
}

describe('kubectl', () => {
  it('applies the CRDs from deploy/ (already registered, so unchanged)', async () => {
    // deploy/crds alone: `apply -k deploy/` would install CDI itself (sandbox-install.test.ts).
    const out = await ok(['apply', '-f', join(repoRoot(), 'deploy', 'crds')]);
    expect(out).toContain(
      'customresourcedefinition.apiextensions.k8s.io/datavolumes.cdi.kubevirt.io unchanged',
    );
    expect(await ok(['api-resources', '--api-group=cdi.kubevirt.io', '-o', 'name'])).toContain(
      'datavolumes.cdi.kubevirt.io',
    );
  });

  it('applies a DataVolume and reads it back as json, jsonpath and yaml', async () => {
    expect(await ok(['apply', '-f', '-'], DV)).toBe('datavolume.cdi.kubevirt.io/fedora created\n');
    expect(await ok(['apply', '-f', '-'], DV)).toBe(
      'datavolume.cdi.kubevirt.io/fedora unchanged\n',
    );
    const json = JSON.parse(await ok(['get', 'dv', 'fedora', '-o', 'json'])) as {
      spec: { source: { http: { url: string } } };
    };
    expect(json.spec.source.http.url).toBe('http://127.0.0.1:1/disk.qcow2');
    expect(
      await ok([
        'get',
        'dvs',
        'fedora',
        '-o',
        'jsonpath={.spec.storage.resources.requests.storage}',
      ]),
    ).toBe('64Mi');
    const yaml = await ok(['get', 'datavolume.v1alpha1.cdi.kubevirt.io', 'fedora', '-o', 'yaml']);
    expect(yaml).toContain('apiVersion: cdi.kubevirt.io/v1alpha1');
    expect(yaml).toContain('kind: DataVolume');
  });

  it('refuses undeclared fields (kubectl validates strictly on the server)', async () => {
    const bad = DV.replace('name: fedora', 'name: typo').replace('  storage:', '  storag:');
    const r = await kubectl(sandbox, ['apply', '-f', '-'], { input: bad });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('strict decoding error: unknown field "spec.storag"');
  });

  it('prints the DataVolume columns Phase, Progress, Restarts and Age', async () => {
    await setStatus({ phase: 'ImportInProgress', progress: '42.00%', restartCount: 2 });
    const lines = (await ok(['get', 'dv'])).trim().split('\n');
    expect(lines[0]?.split(/\s+/)).toEqual(['NAME', 'PHASE', 'PROGRESS', 'RESTARTS', 'AGE']);
    expect(lines[1]).toMatch(/^fedora\s+ImportInProgress\s+42\.00%\s+2\s+\d+s$/);
  });

  it('patches the spec (merge and json) and labels', async () => {
    await ok([
      'patch',
      'dv',
      'fedora',
      '--type=merge',
      '-p',
      '{"spec":{"contentType":"kubevirt"}}',
    ]);
    await ok([
      'patch',
      'dv',
      'fedora',
      '--type=json',
      '-p',
      '[{"op":"add","path":"/spec/preallocation","value":true}]',
    ]);
    expect(
      await ok([
        'get',
        'dv',
        'fedora',
        '-o',
        'jsonpath={.spec.contentType} {.spec.preallocation} {.metadata.generation}',
      ]),
    ).toBe('kubevirt true 3');
    await ok(['label', 'dv', 'fedora', 'tier=gold']);
    expect(await ok(['get', 'dv', '-l', 'tier=gold,app=demo', '-o', 'name'])).toBe(
      'datavolume.cdi.kubevirt.io/fedora\n',
    );
    expect(await ok(['get', 'dv', '-l', 'tier=silver', '-o', 'name'])).toBe('');
  });

  it('waits for a jsonpath condition and watches changes with get -w', async () => {
    const watcher = spawn(KUBECTL, [
      '--kubeconfig',
      sandbox.kubeconfigPath,
      '--cache-dir',
      join(sandbox.dataDir, 'kubectl-cache'),
      'get',
      'dv',
      'fedora',
      '-w',
      '--request-timeout=60s',
      '-o',
      'jsonpath={.status.phase}{"\\n"}',
    ]);
    const lines: string[] = [];
    let sawSucceeded: () => void = () => undefined;
    const succeeded = new Promise<void>((resolve) => (sawSucceeded = resolve));
    watcher.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      lines.push(...chunk.split('\n').filter((l) => l !== ''));
      if (lines.includes('Succeeded')) sawSucceeded();
    });
    const firstLine = new Promise<void>((resolve) => watcher.stdout.once('data', () => resolve()));
    const wait = kubectl(sandbox, [
      'wait',
      'dv/fedora',
      '--for=jsonpath={.status.phase}=Succeeded',
      '--timeout=30s',
    ]);
    await firstLine;
    await setStatus({ phase: 'Succeeded', progress: '100.0%' });
    const waited = await wait;
    expect(waited.stdout).toBe('datavolume.cdi.kubevirt.io/fedora condition met\n');
    expect(waited.code).toBe(0);
    await succeeded;
    watcher.kill();
    expect(lines[0]).toBe('ImportInProgress');
    expect(lines).toContain('Succeeded');
  });

  it('applies a core kind twice with a change (strategic merge) and deletes it', async () => {
    const cm = (v: string): string =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: "${v}"\n`;
    expect(await ok(['apply', '-f', '-'], cm('1'))).toBe('configmap/settings created\n');
    expect(await ok(['apply', '-f', '-'], cm('2'))).toBe('configmap/settings configured\n');
    expect(await ok(['get', 'cm', 'settings', '-o', 'jsonpath={.data.a}'])).toBe('2');
    expect(await ok(['delete', 'cm', 'settings'])).toBe('configmap "settings" deleted\n');
  });

  it('deletes the DataVolume; a later get is NotFound', async () => {
    expect(await ok(['delete', 'dv', 'fedora'])).toBe(
      'datavolume.cdi.kubevirt.io "fedora" deleted\n',
    );
    const gone = await kubectl(sandbox, ['get', 'dv', 'fedora']);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain(
      'Error from server (NotFound): datavolumes.cdi.kubevirt.io "fedora" not found',
    );
  });
});
