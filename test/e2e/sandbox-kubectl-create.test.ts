// SPDX-License-Identifier: Apache-2.0
/**
 * kubectl as people type it: the `create` generators and `run` (protobuf bodies), tokens of
 * service accounts and who they authenticate as, `logs`, and `get events`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubectl } from '../sandbox/testing.js';

let sandbox: Sandbox;

beforeAll(async () => {
  sandbox = await startSandbox();
});

afterAll(async () => {
  await sandbox.stop();
});

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await kubectl(sandbox, args, input === undefined ? {} : { input });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

const CREATES: readonly { readonly args: readonly string[]; readonly out: string }[] = [
  { args: ['create', 'namespace', 'team'], out: 'namespace/team created\n' },
  {
    args: ['create', 'configmap', 'settings', '-n', 'team', '--from-literal=mode=fast'],
    out: 'configmap/settings created\n',
  },
  {
    args: ['create', 'secret', 'generic', 'creds', '-n', 'team', '--from-literal=pass=s3cr3t'],
    out: 'secret/creds created\n',
  },
  {
    args: ['create', 'serviceaccount', 'robot', '-n', 'team'],
    out: 'serviceaccount/robot created\n',
  },
];

describe('kubectl create, run, token, logs, events', () => {
  it.each(CREATES)('kubectl $args.0 $args.1 $args.2', async ({ args, out }) => {
    expect(await ok(args)).toBe(out);
  });

  it('stores what the generators sent', async () => {
    expect(await ok(['get', 'ns', 'team', '-o', 'jsonpath={.metadata.name}'])).toBe('team');
    expect(await ok(['get', 'cm', 'settings', '-n', 'team', '-o', 'jsonpath={.data.mode}'])).toBe(
      'fast',
    );
    const pass = await ok(['get', 'secret', 'creds', '-n', 'team', '-o', 'jsonpath={.data.pass}']);
    expect(Buffer.from(pass, 'base64').toString()).toBe('s3cr3t');
  });

  it('issues a token for a service account that authenticates as it', async () => {
    const token = (await ok(['create', 'token', 'robot', '-n', 'team'])).trim();
    expect(token.split('.')).toHaveLength(3);
    const who = await ok([
      'auth',
      'whoami',
      '--token',
      token,
      '-o',
      'jsonpath={.status.userInfo.username}',
    ]);
    expect(who).toBe('system:serviceaccount:team:robot');
    const bad = await kubectl(sandbox, ['get', 'ns', '--token', `${token}x`]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('Unauthorized');
    const short = await kubectl(sandbox, [
      'create',
      'token',
      'robot',
      '-n',
      'team',
      '--duration=1m',
    ]);
    expect(short.stderr).toContain('may not specify a duration less than 10 minutes');
  });

  it('runs a pod with kubectl run and shows its output with kubectl logs', async () => {
    expect(
      await ok([
        'run',
        'hello',
        '-n',
        'team',
        '--image=busybox',
        '--restart=Never',
        '--env=WHO=sandbox',
        '--labels=app=hello',
        '--',
        'sh',
        '-c',
        'echo "hello $WHO"',
      ]),
    ).toBe('pod/hello created\n');
    expect(
      await ok([
        'wait',
        '-n',
        'team',
        'pod/hello',
        '--for=jsonpath={.status.phase}=Succeeded',
        '--timeout=60s',
      ]),
    ).toBe('pod/hello condition met\n');
    expect(await ok(['logs', 'hello', '-n', 'team'])).toBe('hello sandbox\n');
    expect(
      await ok(['get', 'pod', 'hello', '-n', 'team', '-o', 'jsonpath={.metadata.labels.app}']),
    ).toBe('hello');
  });

  it.each([
    {
      field: 'datavolume.spec.source.http',
      want: [
        /^KIND:\s+DataVolume$/m,
        /^FIELD: http <Object>$/m,
        /^ {2}url\t<string> -required-$/m,
        /^ {2}secretExtraHeaders\t<\[\]string>$/m,
      ],
    },
    {
      field: 'pvc.spec',
      want: [
        /^KIND:\s+PersistentVolumeClaim$/m,
        /^ {2}accessModes\t<\[\]string>$/m,
        /^ {2}storageClassName\t<string>$/m,
      ],
    },
  ])('kubectl explain $field', async ({ field, want }) => {
    const out = await ok(['explain', field]);
    for (const re of want) expect(out).toMatch(re);
  });

  it('applies server-side with field managers, reports a conflict, and takes it when forced', async () => {
    const cm = (data: string): string =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gitops\n  namespace: team\ndata:\n${data}`;
    const ssa = ['apply', '--server-side', '-f', '-'];
    expect(await ok(ssa, cm('  a: "1"\n  b: "1"\n'))).toBe('configmap/gitops serverside-applied\n');
    expect(await ok(ssa, cm('  a: "2"\n'))).toBe('configmap/gitops serverside-applied\n');
    // b was applied before and is not any more: it goes, as no other manager owns it.
    expect(await ok(['get', 'cm', 'gitops', '-n', 'team', '-o', 'jsonpath={.data}'])).toBe(
      '{"a":"2"}',
    );
    await ok([
      'patch',
      'cm',
      'gitops',
      '-n',
      'team',
      '--type=merge',
      '-p',
      '{"data":{"a":"hand"}}',
    ]);
    const conflict = await kubectl(sandbox, ssa, { input: cm('  a: "3"\n') });
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toContain(
      'Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .data.a',
    );
    expect(await ok([...ssa, '--force-conflicts'], cm('  a: "3"\n'))).toBe(
      'configmap/gitops serverside-applied\n',
    );
    const managed = JSON.parse(
      await ok(['get', 'cm', 'gitops', '-n', 'team', '--show-managed-fields', '-o', 'json']),
    ) as {
      data: Record<string, string>;
      metadata: { managedFields: { manager: string; operation: string; fieldsV1: unknown }[] };
    };
    expect(managed.data).toEqual({ a: '3' });
    expect(managed.metadata.managedFields.map((m) => [m.manager, m.operation, m.fieldsV1])).toEqual(
      [['kubectl', 'Apply', { 'f:data': { '.': {}, 'f:a': {} } }]],
    );
  });

  it('applies a DataVolume server-side and co-owns an unchanged field with another manager', async () => {
    const dv = (url: string): string => `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: ssa-dv
  namespace: team
spec:
  source:
    http:
      url: ${url}
  storage:
    resources:
      requests:
        storage: 16Mi
`;
    expect(await ok(['apply', '--server-side', '-f', '-'], dv('http://127.0.0.1:1/a.img'))).toBe(
      'datavolume.cdi.kubevirt.io/ssa-dv serverside-applied\n',
    );
    expect(
      await ok(
        ['apply', '--server-side', '--field-manager=argocd', '-f', '-'],
        dv('http://127.0.0.1:1/a.img'),
      ),
    ).toBe('datavolume.cdi.kubevirt.io/ssa-dv serverside-applied\n');
    const changed = await kubectl(
      sandbox,
      ['apply', '--server-side', '--field-manager=argocd', '-f', '-'],
      {
        input: dv('http://127.0.0.1:1/b.img'),
      },
    );
    expect(changed.stderr).toContain('conflict with "kubectl": .spec.source.http.url');
  });

  it('lists the events with kubectl get events', async () => {
    const lines = (await ok(['get', 'events', '-n', 'team'])).trim().split('\n');
    expect(lines[0]?.split(/\s{2,}/)).toEqual(['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE']);
    expect(
      lines.some((l) =>
        /Normal\s+Scheduled\s+pod\/hello\s+Successfully assigned team\/hello/.test(l),
      ),
    ).toBe(true);
  });
});
