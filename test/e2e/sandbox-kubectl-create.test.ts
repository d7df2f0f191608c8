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
