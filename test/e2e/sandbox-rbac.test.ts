// SPDX-License-Identifier: Apache-2.0
/**
 * Authentication and RBAC: a service account's token is authorised by Roles, ClusterRoles and
 * their bindings (verbs, resources, subresources, resourceNames, aggregated ClusterRoles), a
 * denial is kube's 403 with its message, the admin stays cluster-admin, and the controller,
 * installed from a copy of deploy/ and running in its pod as deploy/'s ServiceAccount, fails with
 * 403 when its ClusterRole lacks a verb.
 */
import { execFile } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../fixtures/index.js';
import { repoRoot, startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubectl } from '../sandbox/testing.js';

let sandbox: Sandbox;
let token: string;

beforeAll(async () => {
  sandbox = await startSandbox();
  await ok(['create', 'namespace', 'team']);
  await ok(['create', 'serviceaccount', 'robot', '-n', 'team']);
  token = (await ok(['create', 'token', 'robot', '-n', 'team'])).trim();
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

/** kubectl as the robot; returns stderr (or stdout when it worked). */
async function asRobot(args: readonly string[]): Promise<{ code: number; out: string }> {
  const r = await kubectl(sandbox, [...args, '--token', token]);
  return { code: r.code, out: r.code === 0 ? r.stdout : r.stderr };
}

/** `kubectl auth can-i` as the robot: yes or no (on stdout, exit code 1 for no). */
async function robotCan(...args: string[]): Promise<string> {
  return (await kubectl(sandbox, ['auth', 'can-i', ...args, '--token', token])).stdout.trim();
}

const USER = 'system:serviceaccount:team:robot';

describe('RBAC', () => {
  it('denies an account without bindings with kube 403 messages', async () => {
    const cases = [
      {
        args: ['get', 'pods', '-n', 'team'],
        msg: `Error from server (Forbidden): pods is forbidden: User "${USER}" cannot list resource "pods" in API group "" in the namespace "team"`,
      },
      {
        args: ['get', 'dv', 'x', '-n', 'team'],
        msg: `Error from server (Forbidden): datavolumes.cdi.kubevirt.io "x" is forbidden: User "${USER}" cannot get resource "datavolumes" in API group "cdi.kubevirt.io" in the namespace "team"`,
      },
      {
        args: ['get', 'nodes'],
        msg: `Error from server (Forbidden): nodes is forbidden: User "${USER}" cannot list resource "nodes" in API group "" at the cluster scope`,
      },
    ];
    for (const c of cases) {
      const r = await asRobot(c.args);
      expect(r.code).not.toBe(0);
      expect(r.out.trim()).toBe(c.msg);
    }
    expect(await robotCan('list', 'pods', '-n', 'team')).toBe('no');
  });

  it('allows by verb, resource, subresource and resourceNames of a bound Role', async () => {
    await ok(
      ['apply', '-f', '-'],
      `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: pod-reader, namespace: team }
rules:
  - apiGroups: ['']
    resources: [pods]
    verbs: [list]
  - apiGroups: ['']
    resources: [configmaps]
    resourceNames: [allowed]
    verbs: [get]
  - apiGroups: [cdi.kubevirt.io]
    resources: [datavolumes/status]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: robot-reads, namespace: team }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader }
subjects:
  - { kind: ServiceAccount, name: robot, namespace: team }
`,
    );
    await ok(['create', 'configmap', 'allowed', '-n', 'team', '--from-literal=a=b']);
    await ok(['create', 'configmap', 'other', '-n', 'team', '--from-literal=a=b']);
    expect((await asRobot(['get', 'pods', '-n', 'team'])).code).toBe(0);
    expect((await asRobot(['get', 'cm', 'allowed', '-n', 'team', '-o', 'name'])).out).toBe(
      'configmap/allowed\n',
    );
    const other = await asRobot(['get', 'cm', 'other', '-n', 'team']);
    expect(other.out).toContain(
      `configmaps "other" is forbidden: User "${USER}" cannot get resource "configmaps" in API group "" in the namespace "team"`,
    );
    // Another namespace: the RoleBinding does not reach it.
    expect((await asRobot(['get', 'pods', '-n', 'default'])).out).toContain(
      'in the namespace "default"',
    );
    const cani = robotCan;
    expect(
      await cani('get', 'datavolumes.cdi.kubevirt.io', '--subresource=status', '-n', 'team'),
    ).toBe('yes');
    expect(
      await cani('update', 'datavolumes.cdi.kubevirt.io', '--subresource=status', '-n', 'team'),
    ).toBe('no');
    expect(await cani('get', 'datavolumes.cdi.kubevirt.io', '-n', 'team')).toBe('no');
  });

  it('aggregates ClusterRoles by label and binds them cluster-wide', async () => {
    await ok(
      ['apply', '-f', '-'],
      `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: storage-viewer }
aggregationRule:
  clusterRoleSelectors:
    - matchLabels: { example.com/aggregate-to-storage-viewer: "true" }
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pvc-lister
  labels: { example.com/aggregate-to-storage-viewer: "true" }
rules:
  - apiGroups: ['']
    resources: [persistentvolumeclaims]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: robot-storage }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: storage-viewer }
subjects:
  - { kind: ServiceAccount, name: robot, namespace: team }
`,
    );
    expect((await asRobot(['get', 'pvc', '-A'])).code).toBe(0);
    expect((await asRobot(['get', 'pv'])).code).not.toBe(0);
  });

  it('authenticates a client certificate signed by the cluster CA (CN user, O groups)', async () => {
    const tmp = await makeTempDir('cdi-e2e-x509-');
    try {
      const pki = join(sandbox.dataDir, 'pki');
      const run = (args: string[]): Promise<unknown> =>
        promisify(execFile)('openssl', args, { cwd: tmp.dir });
      await run(
        ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
          '-keyout',
          'jane.key',
          '-out',
          'jane.csr',
          '-subj',
          '/O=storage-admins/CN=jane',
        ]),
      );
      await run(
        [
          'x509',
          '-req',
          '-in',
          'jane.csr',
          '-CA',
          join(pki, 'ca.crt'),
          '-CAkey',
          join(pki, 'ca.key'),
        ].concat(['-CAcreateserial', '-days', '1', '-out', 'jane.crt']),
      );
      const kubeconfig = join(tmp.dir, 'kubeconfig');
      const base = ['--kubeconfig', kubeconfig];
      await ok(['config', 'view', '--raw', '--minify', '-o', 'yaml']).then((text) =>
        writeFile(
          kubeconfig,
          text.replace(
            /token: .*/,
            `client-certificate: ${join(tmp.dir, 'jane.crt')}\n    client-key: ${join(tmp.dir, 'jane.key')}`,
          ),
        ),
      );
      const who = await kubectl(sandbox, [
        ...base,
        'auth',
        'whoami',
        '-o',
        'jsonpath={.status.userInfo}',
      ]);
      expect(JSON.parse(who.stdout)).toEqual({
        username: 'jane',
        groups: ['storage-admins', 'system:authenticated'],
      });
      // The group is what a binding names.
      await ok([
        'create',
        'clusterrolebinding',
        'storage-admins',
        '--clusterrole=cluster-admin',
        '--group=storage-admins',
      ]);
      expect((await kubectl(sandbox, [...base, 'get', 'pv'])).code).toBe(0);
    } finally {
      await tmp.cleanup();
    }
  });

  it('keeps the admin kubeconfig cluster-admin', async () => {
    expect(await ok(['auth', 'can-i', '*', '*', '--all-namespaces'])).toBe('yes\n');
  });
});

describe('the controller under deploy/ RBAC', () => {
  it('fails with 403 when its ClusterRole lacks a verb', async () => {
    const tmp = await makeTempDir('cdi-e2e-rbac-');
    let broken: Sandbox | undefined;
    try {
      const deploy = join(tmp.dir, 'deploy');
      await cp(join(repoRoot(), 'deploy'), deploy, { recursive: true });
      const file = join(deploy, 'controller', 'clusterrole.yaml');
      const role = await readFile(file, 'utf8');
      const pvcRule =
        "resources: ['persistentvolumeclaims']\n    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']";
      expect(role).toContain(pvcRule);
      await writeFile(file, role.replace(pvcRule, pvcRule.replace("'create', ", '')));
      // Installed from the edited copy: the controller runs in its pod, with in-cluster config.
      broken = await startSandbox({ deployDir: deploy, install: true });
      const r = await kubectl(broken, ['apply', '-f', '-'], {
        input: `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: { name: blank-one }
spec:
  source: { blank: {} }
  storage: { resources: { requests: { storage: 16Mi } } }
`,
      });
      expect(r.code).toBe(0);
      const want =
        'persistentvolumeclaims is forbidden: User "system:serviceaccount:cdi:cdi-sa" cannot create resource "persistentvolumeclaims" in API group "" in the namespace "default"';
      const sandbox = broken;
      const errors = async (): Promise<string[]> =>
        (
          await kubectl(sandbox, ['logs', '-n', 'cdi', '-l', 'cdi.kubevirt.io=cdi-controller'])
        ).stdout
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => {
            const error = (JSON.parse(l) as { error?: unknown }).error;
            return typeof error === 'string' ? error : '';
          });
      let seen: string[] = [];
      for (let i = 0; i < 300 && !seen.some((e) => e.includes(want)); i++) {
        await new Promise((done) => setTimeout(done, 100));
        seen = await errors();
      }
      expect(seen).toContain(`create PVC default/blank-one: ${want}`);
      const pvc = await kubectl(broken, ['get', 'pvc', 'blank-one']);
      expect(pvc.stderr).toContain('NotFound');
    } finally {
      await broken?.stop();
      await tmp.cleanup();
    }
  });
});
