// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox kubelet: pods that succeed, fail and are restarted (OnFailure), fail for good
 * (Never) with a termination message, wait for a missing Secret, cannot "pull" a foreign image,
 * are killed on deletion, and a Service that reaches a ready pod through its clusterIP.
 */
import { request } from 'node:http';
import { CoreV1Api, type KubeConfig, type V1Container, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImporterEnv } from '../../common/contract.js';
import { resolveProgram } from '../sandbox/container-process.js';
import { FAST_RESTART_BACKOFF, startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubeConfigFor, kubectl, waitForDeletion, waitForObject } from '../sandbox/testing.js';

let sandbox: Sandbox;
let kc: KubeConfig;
let core: CoreV1Api;
const NS = 'default';
const PODS = `/api/v1/namespaces/${NS}/pods`;

beforeAll(async () => {
  sandbox = await startSandbox({ restartBackoff: FAST_RESTART_BACKOFF });
  kc = kubeConfigFor(sandbox);
  core = kc.makeApiClient(CoreV1Api);
});

afterAll(async () => {
  await sandbox.stop();
});

function shPod(
  name: string,
  script: string,
  extra: {
    restartPolicy?: string;
    container?: Partial<V1Container>;
    volumes?: V1Pod['spec'] extends infer S ? (S extends { volumes?: infer V } ? V : never) : never;
  } = {},
): V1Pod {
  return {
    metadata: { name, labels: { app: name } },
    spec: {
      restartPolicy: extra.restartPolicy ?? 'Never',
      containers: [
        { name: 'main', image: 'busybox', command: ['sh', '-c', script], ...extra.container },
      ],
      ...(extra.volumes === undefined ? {} : { volumes: extra.volumes }),
    },
  };
}

const terminal = (p: V1Pod): boolean =>
  p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';

describe('pod lifecycle', () => {
  it('runs a pod to Succeeded and serves its log', async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: shPod('ok', 'echo "hello from $HOSTNAME"'),
    });
    const pod = await waitForObject<V1Pod>(kc, { path: PODS, name: 'ok', until: terminal });
    expect(pod.status?.phase).toBe('Succeeded');
    expect(pod.spec?.nodeName).toBe('sandbox-node');
    expect(pod.status?.podIP).toMatch(/^127\.\d+\.\d+\.\d+$/);
    const cs = pod.status?.containerStatuses?.[0];
    expect(cs?.state?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(cs?.restartCount).toBe(0);
    expect((await kubectl(sandbox, ['logs', 'ok'])).stdout).toBe('hello from ok\n');
  });

  it('restarts a failing container under OnFailure until it succeeds', async () => {
    const script =
      'if [ ! -f "$MARK" ]; then touch "$MARK"; echo "first try" > "$CDI_TERMINATION_LOG"; exit 7; fi; exit 0';
    await core.createNamespacedPod({
      namespace: NS,
      body: shPod('flaky', script, {
        restartPolicy: 'OnFailure',
        container: {
          volumeMounts: [{ name: 'work', mountPath: '/work' }],
          env: [{ name: 'MARK', value: '/work/ran' }],
        },
        volumes: [{ name: 'work', emptyDir: {} }],
      }),
    });
    const pod = await waitForObject<V1Pod>(kc, { path: PODS, name: 'flaky', until: terminal });
    expect(pod.status?.phase).toBe('Succeeded');
    const cs = pod.status?.containerStatuses?.[0];
    expect(cs?.restartCount).toBe(1);
    expect(cs?.lastState?.terminated).toMatchObject({
      exitCode: 7,
      reason: 'Error',
      message: 'first try\n',
    });
  });

  it.each([
    {
      what: 'the termination message file is read into state.terminated.message',
      script: `echo '{"message":"Import Complete","scratchSpaceRequired":false}' > "$${ImporterEnv.TerminationLog}"; exit 1`,
      policy: 'File',
      message: '{"message":"Import Complete","scratchSpaceRequired":false}\n',
    },
    {
      what: 'FallbackToLogsOnError uses the log tail when the file is empty',
      script: 'echo "line one"; echo "boom: disk full" >&2; exit 2',
      policy: 'FallbackToLogsOnError',
      message: 'line one\nboom: disk full\n',
    },
  ])('$what', async ({ script, policy, message }) => {
    const name = `msg-${policy.toLowerCase()}`;
    await core.createNamespacedPod({
      namespace: NS,
      body: shPod(name, script, { container: { terminationMessagePolicy: policy } }),
    });
    const pod = await waitForObject<V1Pod>(kc, { path: PODS, name: name, until: terminal });
    expect(pod.status?.phase).toBe('Failed');
    expect(pod.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.message).toBe(message);
  });

  it('restarts an exiting container under Always with a back-off', async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: shPod('looping', 'exit 0', { restartPolicy: 'Always' }),
    });
    const pod = await waitForObject<V1Pod>(kc, {
      path: PODS,
      name: 'looping',
      until: (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2,
    });
    expect(pod.status?.phase).toBe('Running');
    expect(pod.status?.containerStatuses?.[0]?.lastState?.terminated?.reason).toBe('Completed');
    await core.deleteNamespacedPod({ name: 'looping', namespace: NS, gracePeriodSeconds: 0 });
  });

  it('waits in CrashLoopBackOff between restarts, with the last exit in lastState', async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: shPod('crashing', 'echo "bad config" > "$CDI_TERMINATION_LOG"; exit 3', {
        restartPolicy: 'Always',
      }),
    });
    const pod = await waitForObject<V1Pod>(kc, {
      path: PODS,
      name: 'crashing',
      until: (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff',
    });
    const cs = pod.status?.containerStatuses?.[0];
    expect(cs?.state?.waiting?.message).toMatch(
      /^back-off \d+ms restarting failed container=main pod=crashing_default\([0-9a-f-]{36}\)$/,
    );
    expect(cs?.restartCount).toBeGreaterThanOrEqual(1);
    expect(cs?.ready).toBe(false);
    expect(cs?.lastState?.terminated).toMatchObject({
      exitCode: 3,
      reason: 'Error',
      message: 'bad config\n',
    });
    expect(pod.status?.phase).toBe('Running');
    await core.deleteNamespacedPod({ name: 'crashing', namespace: NS, gracePeriodSeconds: 0 });
  });

  it('runs init containers first, sharing volumes with the main container', async () => {
    const body = shPod('with-init', 'cat "$SHARED/greeting"', {
      container: {
        env: [{ name: 'SHARED', value: '/shared' }],
        volumeMounts: [{ name: 's', mountPath: '/shared' }],
      },
      volumes: [{ name: 's', emptyDir: {} }],
    });
    body.spec!.initContainers = [
      {
        name: 'init',
        image: 'busybox',
        command: ['sh', '-c', 'echo "hi from init" > "$SHARED/greeting"'],
        env: [{ name: 'SHARED', value: '/shared' }],
        volumeMounts: [{ name: 's', mountPath: '/shared' }],
      },
    ];
    await core.createNamespacedPod({ namespace: NS, body });
    const pod = await waitForObject<V1Pod>(kc, { path: PODS, name: 'with-init', until: terminal });
    expect(pod.status?.phase).toBe('Succeeded');
    expect(pod.status?.initContainerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    expect((await kubectl(sandbox, ['logs', 'with-init'])).stdout).toBe('hi from init\n');
  });

  it('runs a pod created with spec.nodeName already set', async () => {
    const body = shPod('pinned', 'exit 0');
    body.spec!.nodeName = 'sandbox-node';
    await core.createNamespacedPod({ namespace: NS, body });
    const pod = await waitForObject<V1Pod>(kc, { path: PODS, name: 'pinned', until: terminal });
    expect(pod.status?.phase).toBe('Succeeded');
    expect(pod.status?.podIP).toBeDefined();
  });

  it('reports ErrImagePull for a container it cannot run', async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: 'foreign' },
        spec: { containers: [{ name: 'main', image: 'quay.io/example/app:1', command: ['/app'] }] },
      },
    });
    const pod = await waitForObject<V1Pod>(kc, {
      path: PODS,
      name: 'foreign',
      until: (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ErrImagePull',
    });
    expect(pod.status?.phase).toBe('Pending');
    expect(pod.status?.containerStatuses?.[0]?.state?.waiting?.message).toContain(
      'quay.io/example/app:1',
    );
  });

  it('refuses a node pull before its init container runs: only runc pulls images', async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: 'node-pull' },
        spec: {
          restartPolicy: 'OnFailure',
          initContainers: [
            { name: 'init', image: 'cdi-ts/cdi:latest', command: ['sh', '-c', 'exit 0'] },
          ],
          containers: [
            { name: 'importer', image: 'cdi-ts/cdi:latest', command: ['cdi', 'importer'] },
            { name: 'server', image: '127.0.0.1:5000/disk:v1', command: ['/shared/server'] },
          ],
        },
      },
    });
    const pod = await waitForObject<V1Pod>(kc, {
      path: PODS,
      name: 'node-pull',
      until: (p) => p.status?.initContainerStatuses?.[0]?.state?.waiting?.reason === 'ErrImagePull',
    });
    expect(pod.status?.initContainerStatuses?.[0]?.state?.waiting?.message).toBe(
      'Failed to pull image "127.0.0.1:5000/disk:v1": the sandbox runs only containers whose ' +
        'command is cdi or sh; images are pulled only by the runc pod runtime ' +
        '(--pod-runtime runc --image-source registry), which registry pullMethod node needs',
    );
    expect(pod.status?.initContainerStatuses?.[0]?.restartCount).toBe(0);
  });

  it('keeps a pod ContainerCreating until its Secret exists, then mounts it and maps env paths', async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: shPod('needs-secret', 'cat "$CERT_FILE"; echo; echo "$TOKEN"', {
        container: {
          volumeMounts: [{ name: 'certs', mountPath: '/certs' }],
          env: [
            { name: 'CERT_FILE', value: '/certs/tls.crt' },
            { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'tls', key: 'token' } } },
          ],
        },
        volumes: [{ name: 'certs', secret: { secretName: 'tls' } }],
      }),
    });
    await waitForObject<V1Pod>(kc, {
      path: PODS,
      name: 'needs-secret',
      until: (p) =>
        p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ContainerCreating',
    });
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'tls' }, stringData: { 'tls.crt': 'CERTDATA', token: 't0k' } },
    });
    const pod = await waitForObject<V1Pod>(kc, {
      path: PODS,
      name: 'needs-secret',
      until: terminal,
    });
    expect(pod.status?.phase).toBe('Succeeded');
    expect((await kubectl(sandbox, ['logs', 'needs-secret'])).stdout).toBe('CERTDATA\nt0k\n');
  });

  it('kills the process when the pod is deleted', async () => {
    await core.createNamespacedPod({ namespace: NS, body: shPod('sleeper', 'exec sleep 600') });
    const running = await waitForObject<V1Pod>(kc, {
      path: PODS,
      name: 'sleeper',
      until: (p) => p.status?.containerStatuses?.[0]?.state?.running !== undefined,
    });
    // The sandbox's containerID is sandbox://<pid>; sh exec's sleep in the same process.
    const pid = Number(
      running.status?.containerStatuses?.[0]?.containerID?.replace('sandbox://', ''),
    );
    expect(pid).toBeGreaterThan(1);
    expect(() => process.kill(pid, 0)).not.toThrow();
    await core.deleteNamespacedPod({ name: 'sleeper', namespace: NS });
    await waitForDeletion(kc, PODS, {
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'sleeper',
      namespace: NS,
    });
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }) as Error);
  });
});

describe('services', () => {
  it('forwards the clusterIP to the ready pod the selector matches', async () => {
    const server = `require('http').createServer((q, s) => s.end('pong from ' + process.env.POD_IP)).listen(8080, process.env.POD_IP)`;
    await core.createNamespacedPod({
      namespace: NS,
      body: shPod('web', `exec "$NODE" -e "${server}"`, {
        restartPolicy: 'Always',
        container: {
          env: [
            { name: 'NODE', value: process.execPath },
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          ],
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
        },
      }),
    });
    const svc = await core.createNamespacedService({
      namespace: NS,
      body: {
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ port: 18080, targetPort: 'http' }] },
      },
    });
    const ip = svc.spec?.clusterIP ?? '';
    expect(ip).toMatch(/^127\.\d+\.\d+\.\d+$/);
    const pod = await waitForObject<V1Pod>(kc, {
      path: PODS,
      name: 'web',
      until: (p) =>
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    });
    const body = await new Promise<string>((resolve, reject) => {
      request({ host: ip, port: 18080, path: '/' }, (res) => {
        let text = '';
        res
          .setEncoding('utf8')
          .on('data', (d: string) => (text += d))
          .on('end', () => resolve(text));
      })
        .on('error', reject)
        .end();
    });
    expect(body).toBe(`pong from ${pod.status?.podIP ?? ''}`);
    await core.deleteNamespacedPod({ name: 'web', namespace: NS });
  });
});

describe('the cdi entry', () => {
  it.each([
    {
      what: 'cdi as command',
      container: { command: ['/usr/bin/cdi', 'importer'], args: ['--v=1'] },
      args: ['/repo/dist/cmd/cdi.js', 'importer', '--v=1'],
    },
    {
      what: 'cdi as first arg',
      container: { args: ['cdi', 'uploadserver'] },
      args: ['/repo/dist/cmd/cdi.js', 'uploadserver'],
    },
  ])('$what runs dist/cmd/cdi.js with node', ({ container, args }) => {
    expect(resolveProgram(container, '/repo')).toEqual({ file: process.execPath, args });
  });

  it('sh runs the real shell; other commands cannot be pulled', () => {
    expect(resolveProgram({ command: ['/bin/sh', '-c', 'true'] }, '/repo')).toEqual({
      file: '/bin/sh',
      args: ['-c', 'true'],
    });
    expect(
      resolveProgram({ image: 'x/importer:v1', command: ['/usr/bin/cdi-importer'] }, '/repo'),
    ).toHaveProperty('pullError');
  });
});
