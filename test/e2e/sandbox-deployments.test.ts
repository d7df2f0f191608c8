// SPDX-License-Identifier: Apache-2.0
/**
 * Deployments, Services and in-cluster configuration as a cluster gives them, with local process
 * pods: a Deployment makes a ReplicaSet named by its pod-template hash and the pods it owns,
 * `kubectl rollout status` and `kubectl scale` work, a template change rolls to a new ReplicaSet,
 * Endpoints and EndpointSlices list the ready pods, a failing liveness probe restarts a container,
 * every pod gets KUBERNETES_SERVICE_HOST/PORT and
 * the service-account volume, deleting the Deployment deletes its pods, and the release file of
 * `npm run manifests` holds the objects of deploy/ with the image it is given.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../fixtures/index.js';
import { repoRoot, startSandbox, type Sandbox } from '../sandbox/index.js';
import { isRecord } from '../sandbox/object.js';
import { kubectl } from '../sandbox/testing.js';

const run = promisify(execFile);
let sandbox: Sandbox;

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await kubectl(sandbox, args, input === undefined ? {} : { input });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function deployment(message: string, replicas: number): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: { name: echo, namespace: web }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: echo } }
  template:
    metadata: { labels: { app: echo } }
    spec:
      containers:
        - name: echo
          image: busybox
          command: [sh, -c, 'echo "${message} $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"; exec sleep 600']
          ports: [{ name: http, containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: web }
spec:
  selector: { app: echo }
  ports: [{ name: http, port: 80, targetPort: http }]
`;
}

async function podsOf(): Promise<{ name: string; rs: string; ip: string }[]> {
  const out = await ok(['get', 'pods', '-n', 'web', '-l', 'app=echo', '-o', 'json']);
  const items = (JSON.parse(out) as { items: unknown[] }).items.filter(isRecord);
  return items
    .filter((p) => !isRecord(p['metadata']) || p['metadata']['deletionTimestamp'] === undefined)
    .map((p) => {
      const meta = p['metadata'] as {
        name: string;
        ownerReferences?: { kind: string; name: string }[];
      };
      return {
        name: meta.name,
        rs: meta.ownerReferences?.find((r) => r.kind === 'ReplicaSet')?.name ?? '',
        ip: String((p['status'] as { podIP?: string } | undefined)?.podIP ?? ''),
      };
    });
}

beforeAll(async () => {
  sandbox = await startSandbox();
  await ok(['create', 'namespace', 'web']);
});

afterAll(async () => {
  await sandbox?.stop();
});

describe('Deployments', () => {
  it('rolls out a ReplicaSet of the pod template and its pods', async () => {
    await ok(['apply', '-f', '-'], deployment('hello', 1));
    expect(
      await ok(['-n', 'web', 'rollout', 'status', 'deployment/echo', '--timeout=30s']),
    ).toContain('deployment "echo" successfully rolled out');
    const rs = JSON.parse(await ok(['get', 'rs', '-n', 'web', '-o', 'json'])) as {
      items: { metadata: { name: string; labels: Record<string, string> } }[];
    };
    expect(rs.items).toHaveLength(1);
    const hash = rs.items[0]?.metadata.labels['pod-template-hash'] ?? '';
    expect(rs.items[0]?.metadata.name).toBe(`echo-${hash}`);
    const pods = await podsOf();
    expect(pods.map((p) => p.rs)).toEqual([`echo-${hash}`]);
    const status = JSON.parse(
      await ok(['get', 'deployment', 'echo', '-n', 'web', '-o', 'jsonpath={.status}']),
    ) as Record<string, unknown>;
    expect(status).toMatchObject({ replicas: 1, updatedReplicas: 1, readyReplicas: 1 });
    // kubectl's columns: READY UP-TO-DATE AVAILABLE.
    expect(await ok(['get', 'deployment', 'echo', '-n', 'web'])).toMatch(/echo\s+1\/1\s+1\s+1\s/);
  });

  it('gives each pod the in-cluster configuration of a cluster', async () => {
    const [pod] = await podsOf();
    const kubernetes = await ok([
      'get',
      'svc',
      'kubernetes',
      '-n',
      'default',
      '-o',
      'jsonpath={.spec.clusterIP}',
    ]);
    let log = '';
    await until('the pod log', async () => {
      log = await ok(['logs', '-n', 'web', pod?.name ?? '']);
      return log.includes('hello');
    });
    expect(log.trim()).toBe(`hello ${kubernetes}:443`);
    const mounts = await ok([
      'get',
      'pod',
      pod?.name ?? '',
      '-n',
      'web',
      '-o',
      'jsonpath={.spec.containers[0].volumeMounts[*].mountPath}',
    ]);
    expect(mounts).toBe('/var/run/secrets/kubernetes.io/serviceaccount');
    expect(
      await ok(['get', 'cm', 'kube-root-ca.crt', '-n', 'web', '-o', 'jsonpath={.data.ca\\.crt}']),
    ).toBe(sandbox.caPem);
  });

  it('scales, and lists ready pods in Endpoints and EndpointSlices', async () => {
    expect(await ok(['scale', 'deployment/echo', '-n', 'web', '--replicas=2'])).toContain(
      'deployment.apps/echo scaled',
    );
    await ok(['-n', 'web', 'rollout', 'status', 'deployment/echo', '--timeout=30s']);
    const pods = await podsOf();
    expect(pods).toHaveLength(2);
    const ips = pods.map((p) => p.ip).sort();
    await until('the endpoints', async () => {
      const ep = await ok([
        'get',
        'endpoints',
        'echo',
        '-n',
        'web',
        '-o',
        'jsonpath={.subsets[0].addresses[*].ip}',
      ]);
      return ep.split(' ').sort().join(' ') === ips.join(' ');
    });
    const slice = JSON.parse(
      await ok([
        'get',
        'endpointslices',
        '-n',
        'web',
        '-l',
        'kubernetes.io/service-name=echo',
        '-o',
        'json',
      ]),
    ) as { items: { ports: { port: number }[]; endpoints: { addresses: string[] }[] }[] };
    expect(slice.items[0]?.ports.map((p) => p.port)).toEqual([8080]);
    expect(slice.items[0]?.endpoints.flatMap((e) => e.addresses).sort()).toEqual(ips);
  });

  it('rolls a template change to a new ReplicaSet and scales the old one to zero', async () => {
    const before = (await podsOf())[0]?.rs;
    await ok(['apply', '-f', '-'], deployment('again', 2));
    await ok(['-n', 'web', 'rollout', 'status', 'deployment/echo', '--timeout=30s']);
    await until('the old pods to go', async () => {
      const pods = await podsOf();
      return pods.length === 2 && pods.every((p) => p.rs !== before);
    });
    const revision = await ok([
      'get',
      'deployment',
      'echo',
      '-n',
      'web',
      '-o',
      "jsonpath={.metadata.annotations['deployment\\.kubernetes\\.io/revision']}",
    ]);
    expect(revision).toBe('2');
  });

  it('deletes its ReplicaSets and pods with it', async () => {
    await ok(['delete', 'deployment', 'echo', '-n', 'web']);
    await until('the pods to go', async () => (await podsOf()).length === 0);
    expect((await ok(['get', 'rs', '-n', 'web', '-o', 'name'])).trim()).toBe('');
  });
});

describe('liveness probes', () => {
  it('restart a container whose probe keeps failing, with an Unhealthy event', async () => {
    await ok(
      ['apply', '-f', '-'],
      `apiVersion: v1
kind: Pod
metadata: { name: hung, namespace: web }
spec:
  containers:
    - name: hung
      image: busybox
      command: [sh, -c, 'exec sleep 600']
      livenessProbe:
        httpGet: { path: /healthz, port: 1 }
        periodSeconds: 1
        failureThreshold: 2
`,
    );
    await until('a restart', async () => {
      const restarts = await ok([
        'get',
        'pod',
        'hung',
        '-n',
        'web',
        '-o',
        'jsonpath={.status.containerStatuses[0].restartCount}',
      ]);
      return Number(restarts) >= 1;
    });
    const events = await ok(['get', 'events', '-n', 'web', '--field-selector', 'reason=Unhealthy']);
    expect(events).toContain('Liveness probe failed');
    await ok(['delete', 'pod', 'hung', '-n', 'web', '--wait=false']);
  });
});

describe('npm run manifests', () => {
  it('writes deploy/ as one release file with the image given', async () => {
    const tmp = await makeTempDir('cdi-e2e-manifests-');
    try {
      const out = join(tmp.dir, 'cdi-install.yaml');
      const image = 'registry.example:5000/cdi-ts/cdi@sha256:' + 'a'.repeat(64);
      await run(process.execPath, [
        join(repoRoot(), 'scripts', 'manifests.mjs'),
        '--image',
        image,
        '--out',
        out,
      ]);
      const text = await readFile(out, 'utf8');
      const docs = loadAll(text).filter(isRecord);
      const { stdout } = await run('kubectl', ['kustomize', join(repoRoot(), 'deploy')], {
        maxBuffer: 64 << 20,
      });
      const ids = (list: Record<string, unknown>[]): string[] =>
        list.map(
          (d) => `${String(d['kind'])}/${String((d['metadata'] as { name?: string }).name)}`,
        );
      expect(ids(docs)).toEqual(ids(loadAll(stdout).filter(isRecord)));
      expect(text).not.toContain('cdi-ts/cdi:latest');
      const images = [...text.matchAll(/(?:image|value): (\S*cdi@sha256\S*)/g)].map((m) => m[1]);
      // Three containers and the controller's IMPORTER_IMAGE and UPLOADSERVER_IMAGE.
      expect(images).toEqual(Array.from({ length: 5 }, () => image));
      // kubectl accepts it as the sandbox's API server sees it.
      expect(await ok(['apply', '--dry-run=server', '-f', out])).toContain(
        'deployment.apps/cdi-deployment created (server dry run)',
      );
      const bad = await run(process.execPath, [
        join(repoRoot(), 'scripts', 'manifests.mjs'),
        '--image',
        'Not An Image',
        '--out',
        out,
      ]).catch((err: unknown) => err as { code: number; stderr: string });
      expect(bad).toMatchObject({ code: 1 });
      expect((bad as { stderr: string }).stderr).toContain('not an image reference');
    } finally {
      await tmp.cleanup();
    }
  });
});
