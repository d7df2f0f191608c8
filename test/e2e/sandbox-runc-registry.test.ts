// SPDX-License-Identifier: Apache-2.0
/**
 * The runc kubelet pulls images as a node does: the sandbox's local registry (Debian's
 * `docker-registry`) holds the cdi image as `cdi-ts/cdi:latest`, docker.io is mirrored there,
 * and every container's `image` is resolved to a digest, pulled by digest and unpacked once per
 * digest, by its imagePullPolicy. Failures read as the kubelet's (ErrImagePull, then
 * ImagePullBackOff; ErrImageNeverPull), and the status's `imageID` is `<repo>@sha256:...`.
 * The digests are checked against `skopeo inspect`, not against the runtime's own resolution.
 * A registry import with `pullMethod: node` runs its container disk image as the importer pod's
 * `server` container, pulled by this kubelet; the disk must equal `qemu-img convert -O raw`.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImageOnce } from '../containers/image-build.js';
import { writeImageLayout, type WrittenLayout } from '../helpers/registry-server.js';
import { defaultImageArchive, repoRoot } from '../sandbox/index.js';
import { makeQcow2Disk } from '../fixtures/index.js';
import {
  apply,
  sameDisk,
  startControllerEnv,
  volumeData,
  waitForDv,
  waitForPhase,
  waitForPod,
  type ControllerEnv,
} from './controller-harness.js';

const run = promisify(execFile);
const NS = 'default';
const MiB = 1024 * 1024;

let env: ControllerEnv;
let work: string;
let registry: string;
/** A static program that exits 0: the whole of the probe images. */
let hello: string;

/** Copies an OCI layout into the node's registry as `repo:tag`. */
async function pushToNodeRegistry(layout: WrittenLayout, reference: string): Promise<void> {
  await run('skopeo', [
    '--insecure-policy',
    'copy',
    '--quiet',
    '--dest-tls-verify=false',
    `oci:${layout.dir}:${layout.refName}`,
    `docker://${registry}/${reference}`,
  ]);
}

/** The manifest digest the registry serves for `repo:tag`, as skopeo reads it. */
async function registryDigest(reference: string): Promise<string> {
  const { stdout } = await run('skopeo', [
    'inspect',
    '--tls-verify=false',
    '--format',
    '{{.Digest}}',
    `docker://${registry}/${reference}`,
  ]);
  return stdout.trim();
}

/** Pushes a one-layer image holding `hello` and a marker file as `repo:tag`; returns its digest. */
async function pushProbe(reference: string, marker: string): Promise<string> {
  const dir = await mkdtemp(join(work, 'layout-'));
  const layout = await writeImageLayout(dir, {
    layers: [
      {
        compression: 'gzip',
        entries: [
          { name: 'hello', file: hello, mode: 0o755 },
          { name: 'marker', data: marker },
        ],
      },
    ],
  });
  await pushToNodeRegistry(layout, reference);
  await rm(dir, { recursive: true, force: true });
  return layout.digest;
}

async function runPod(name: string, container: Record<string, unknown>): Promise<V1Pod> {
  await env.core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: { name },
      spec: {
        restartPolicy: 'Never',
        containers: [{ name: 'main', command: ['/hello'], ...container }],
      },
    },
  });
  return waitForPod(env, NS, name, (p) => p.status?.phase === 'Succeeded', 120_000);
}

function waiting(pod: V1Pod): { reason?: string; message?: string } | undefined {
  return pod.status?.containerStatuses?.[0]?.state?.waiting;
}

beforeAll(async () => {
  const image =
    process.env['CDI_E2E_IMAGE'] ??
    (await buildImageOnce(repoRoot(), defaultImageArchive(), (l) => console.log(l)));
  env = await startControllerEnv(undefined, {
    podRuntime: 'runc',
    imageSource: 'registry',
    image,
  });
  if (env.sandbox.registryHost === undefined) throw new Error('the sandbox started no registry');
  registry = env.sandbox.registryHost;
  work = await mkdtemp(join(tmpdir(), 'cdi-runc-registry-'));
  const source = join(work, 'hello.c');
  await writeFile(source, 'int main(void) { return 0; }\n');
  hello = join(work, 'hello');
  await run('cc', ['-static', '-O1', '-o', hello, source]);
}, 600_000);

afterAll(async () => {
  await env?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('image pulls by the runc kubelet', () => {
  it('resolves cdi-ts/cdi:latest through the docker.io mirror and reports its digest', async () => {
    const pod = await runPod('cdi-latest', {
      image: 'cdi-ts/cdi:latest',
      command: ['sh', '-c', 'exit 0'],
    });
    const digest = await registryDigest('cdi-ts/cdi:latest');
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(pod.status?.containerStatuses?.[0]?.imageID).toBe(`docker.io/cdi-ts/cdi@${digest}`);
  });

  it('Always re-resolves a tag, IfNotPresent keeps what the node has, a digest pins', async () => {
    const first = await pushProbe('probe:v1', 'one');
    expect(await registryDigest('probe:v1')).toBe(first);
    const a = await runPod('probe-a', { image: `${registry}/probe:v1` });
    expect(a.status?.containerStatuses?.[0]?.imageID).toBe(`${registry}/probe@${first}`);

    const second = await pushProbe('probe:v1', 'two');
    expect(second).not.toBe(first);
    const cached = await runPod('probe-b', {
      image: `${registry}/probe:v1`,
      imagePullPolicy: 'IfNotPresent',
    });
    expect(cached.status?.containerStatuses?.[0]?.imageID).toBe(`${registry}/probe@${first}`);
    const always = await runPod('probe-c', {
      image: `${registry}/probe:v1`,
      imagePullPolicy: 'Always',
    });
    expect(always.status?.containerStatuses?.[0]?.imageID).toBe(`${registry}/probe@${second}`);
    const pinned = await runPod('probe-d', { image: `${registry}/probe@${first}` });
    expect(pinned.status?.containerStatuses?.[0]?.imageID).toBe(`${registry}/probe@${first}`);
  });

  it('reports a missing tag as ErrImagePull, then ImagePullBackOff', async () => {
    const image = `${registry}/probe:missing`;
    await env.core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: 'missing-tag' },
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image }] },
      },
    });
    const pulled = await waitForPod(
      env,
      NS,
      'missing-tag',
      (p) => waiting(p)?.reason === 'ErrImagePull',
    );
    expect(waiting(pulled)?.message).toBe(
      `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": ` +
        `failed to resolve reference "${image}": ${image}: not found`,
    );
    const backedOff = await waitForPod(
      env,
      NS,
      'missing-tag',
      (p) => waiting(p)?.reason === 'ImagePullBackOff',
    );
    expect(waiting(backedOff)?.message).toBe(`Back-off pulling image "${image}"`);
    expect(backedOff.status?.phase).toBe('Pending');
    // The kubelet's events, as `kubectl get events` lists them.
    const events = await env.core.listNamespacedEvent({ namespace: NS });
    const seen = events.items
      .filter((e) => e.involvedObject.name === 'missing-tag')
      .map((e) => `${e.reason ?? ''}: ${e.message ?? ''}`);
    expect(seen).toEqual(
      expect.arrayContaining([
        `Failed: Failed to pull image "${image}": ${waiting(pulled)?.message ?? ''}`,
        'Failed: Error: ErrImagePull',
        `BackOff: Back-off pulling image "${image}"`,
        'Failed: Error: ImagePullBackOff',
      ]),
    );
  });

  it('refuses an image that is not present under Never', async () => {
    await pushProbe('never:v1', 'never');
    const image = `${registry}/never:v1`;
    await env.core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: 'never-pull' },
        spec: { containers: [{ name: 'main', image, imagePullPolicy: 'Never' }] },
      },
    });
    const pod = await waitForPod(
      env,
      NS,
      'never-pull',
      (p) => waiting(p)?.reason === 'ErrImageNeverPull',
    );
    expect(waiting(pod)?.message).toBe(
      `Container image "${image}" is not present with pull policy of Never`,
    );
  });
});

describe('registry pullMethod node', () => {
  it('imports a container disk whose image the kubelet pulled into the importer pod', async () => {
    const { qcow2, reference } = await makeQcow2Disk(work, 'cd', 16 * MiB, [
      { offset: 0, length: MiB, seed: 21 },
      { offset: 9 * MiB + 512, length: 2 * MiB, seed: 22 },
    ]);
    const dir = await mkdtemp(join(work, 'layout-'));
    const layout = await writeImageLayout(dir, {
      env: ['INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE=u1.small'],
      layers: [
        {
          compression: 'gzip',
          entries: [
            { name: 'disk/', type: 'directory' },
            { name: 'disk/disk.qcow2', file: qcow2 },
          ],
        },
      ],
    });
    await pushToNodeRegistry(layout, 'containerdisk:v1');
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: node-pull
spec:
  source:
    registry:
      url: docker://${registry}/containerdisk:v1
      pullMethod: node
  storage:
    resources:
      requests:
        storage: 64Mi
`,
    );
    await waitForPhase(env, NS, 'node-pull', 'Succeeded', 180_000);
    expect(await sameDisk(reference, await volumeData(env, NS, 'node-pull'))).toBe(true);
    // The image's KUBEVIRT_IO_ environment reached the claim through the server's /info.
    const pvc = await env.core.readNamespacedPersistentVolumeClaim({
      namespace: NS,
      name: 'node-pull',
    });
    expect(pvc.metadata?.labels?.['instancetype.kubevirt.io/default-instancetype']).toBe(
      'u1.small',
    );
    // The importer pod ran the copy of the server (init), the disk image and the importer.
    // Each record is written once runc has cleaned up, a moment after the status says so.
    const ran = (): Set<string> =>
      new Set(
        env.sandbox
          .containerRecords()
          .filter((r) => r.pod === 'importer-node-pull' && r.exitCode === 0)
          .map((r) => r.container),
      );
    for (let i = 0; i < 100 && ran().size < 3; i++) await new Promise((r) => setTimeout(r, 100));
    expect(ran()).toEqual(new Set(['init', 'server', 'importer']));
  });
});

describe('registry pullMethod node, image missing', () => {
  it('shows the failed pull of the disk image on the DataVolume', async () => {
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: node-pull-missing
spec:
  source:
    registry:
      url: docker://${registry}/containerdisk:missing
      pullMethod: node
  storage:
    resources:
      requests:
        storage: 64Mi
`,
    );
    const dv = await waitForDv(env, NS, 'node-pull-missing', (d) =>
      (d.status?.conditions ?? []).some(
        (c) => c.type === 'Running' && c.reason === 'ImagePullFailed',
      ),
    );
    const running = dv.status?.conditions?.find((c) => c.type === 'Running');
    expect(running?.message).toBe(`failed to pull image: ${registry}/containerdisk:missing`);
  });
});
