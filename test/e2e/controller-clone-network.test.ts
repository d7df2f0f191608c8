// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: clones across namespaces (CDI's network clone) in the sandbox. A golden image is
 * imported in `golden-images`; DataVolumes in `vms` clone it by `source.pvc` and by `sourceRef` to
 * a DataSource. The sandbox does not call admission webhooks, so each DataVolume goes through the
 * API server's webhook handler first, exactly as kube-apiserver would send it (the requesting
 * user, a real SubjectAccessReview, the token signed with the key the controller keeps), and is
 * then created with the resulting annotation. A user without permission is refused; a source
 * mounted by another pod waits with CloneSourceInUse and proceeds once that pod is gone. Disks
 * are compared with `qemu-img convert -O raw` of the original image.
 */
import { CDI_NAMESPACE } from '../sandbox/upload-wiring.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CustomObjectsApi, type CoreV1Event } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLONE_TOKEN_ANNOTATION } from '../../common/clone-token.js';
import { kubeAdmissionDeps } from '../../uploadproxy/apiserver/admission-kube.js';
import {
  admitDataVolume,
  type AdmissionDeps,
} from '../../uploadproxy/apiserver/datavolume-mutate.js';
import { loadPrivateKey } from '../../uploadproxy/protocol/token.js';
import { makeQcow2Disk, makeTempDir } from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { waitForObject } from '../sandbox/testing.js';
import {
  apply,
  httpDvManifest,
  sameDisk,
  startControllerEnv,
  volumeData,
  waitForDv,
  waitForPhase,
  type ControllerEnv,
} from './controller-harness.js';

const MIB = 1024 * 1024;
const GOLDEN = 'golden-images';
const VMS = 'vms';
const ADMIN = { username: 'sandbox-admin', groups: ['system:masters', 'system:authenticated'] };
let env: ControllerEnv;
let files: TestHttpServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let rawRef: string;
let deps: AdmissionDeps;

beforeAll(async () => {
  tmp = await makeTempDir('cdi-e2e-netclone-');
  const { qcow2, reference } = await makeQcow2Disk(tmp.dir, 'disk', 24 * MIB, [
    { offset: 0, length: MIB, seed: 21 },
    { offset: 9 * MIB + 4096, length: 3 * MIB, seed: 22 },
    { offset: 23 * MIB, length: MIB, seed: 23 },
  ]);
  rawRef = reference;
  files = await startTestHttpServer({ files: { '/disk.qcow2': { path: qcow2 } } });
  env = await startControllerEnv();
  for (const name of [GOLDEN, VMS])
    await env.core.createNamespace({ body: { metadata: { name } } });
  await apply(
    env,
    httpDvManifest('fedora', `${files.origin}/disk.qcow2`, '', '32Mi').replace(
      'metadata:\n',
      `metadata:\n  namespace: ${GOLDEN}\n`,
    ),
  );
  await waitForPhase(env, GOLDEN, 'fedora', 'Succeeded', 120_000);
  await env.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: 'cdi.kubevirt.io',
    version: 'v1beta1',
    namespace: GOLDEN,
    plural: 'datasources',
    body: {
      apiVersion: 'cdi.kubevirt.io/v1beta1',
      kind: 'DataSource',
      metadata: { name: 'fedora', namespace: GOLDEN },
      spec: { source: { pvc: { namespace: GOLDEN, name: 'fedora' } } },
    },
  });
  // The token signing key the controller keeps for the API server.
  const secret = await waitForObject(env.kc, {
    // The harness runs the controller in CDI's namespace, as deploy/ does.
    path: `/api/v1/namespaces/${CDI_NAMESPACE}/secrets`,
    name: 'cdi-api-signing-key',
    until: () => true,
    timeoutMs: 30_000,
  });
  const data = (secret as { data?: Record<string, string> }).data ?? {};
  const keyFile = join(tmp.dir, 'id_rsa');
  await writeFile(keyFile, Buffer.from(data['id_rsa'] ?? '', 'base64'));
  deps = kubeAdmissionDeps(env.kc, await loadPrivateKey(keyFile));
}, 240_000);

afterAll(async () => {
  await env?.stop();
  await files?.close();
  await tmp?.cleanup();
});

/** A DataVolume in `vms`; `source` is the YAML-free spec part. */
function dataVolume(name: string, source: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    metadata: { name, namespace: VMS },
    spec: { ...source, storage: {} },
  };
}

/** What kube-apiserver would do with the webhook: ask it, then create the patched object. */
async function admit(
  dv: Record<string, unknown>,
  user: Record<string, unknown>,
): Promise<{ allowed: boolean; message?: string; token?: string }> {
  const review = await admitDataVolume(
    {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'e2e',
        operation: 'CREATE',
        namespace: VMS,
        name: (dv['metadata'] as { name: string }).name,
        resource: { group: 'cdi.kubevirt.io', version: 'v1beta1', resource: 'datavolumes' },
        userInfo: user,
        object: dv,
      },
    },
    deps,
  );
  const response = review['response'] as {
    allowed: boolean;
    patch?: string;
    status?: { message: string };
  };
  if (!response.allowed) return { allowed: false, message: response.status?.message ?? '' };
  const ops = JSON.parse(Buffer.from(response.patch ?? '', 'base64').toString('utf8')) as {
    value: Record<string, string>;
  }[];
  return { allowed: true, token: ops[0]?.value[CLONE_TOKEN_ANNOTATION] ?? '' };
}

async function createAdmitted(dv: Record<string, unknown>): Promise<void> {
  const answer = await admit(dv, ADMIN);
  expect(answer.allowed).toBe(true);
  const meta = dv['metadata'] as Record<string, unknown>;
  meta['annotations'] = { [CLONE_TOKEN_ANNOTATION]: answer.token ?? '' };
  await apply(env, JSON.stringify(dv));
}

/** Events of an object, read until `until` holds (bounded). */
async function eventsUntil(
  name: string,
  until: (events: CoreV1Event[]) => boolean,
): Promise<CoreV1Event[]> {
  for (let i = 0; i < 400; i++) {
    const list = await env.core.listNamespacedEvent({ namespace: VMS });
    const events = list.items.filter((e) => e.involvedObject.name === name);
    if (until(events)) return events;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`events of ${name} never matched`);
}

describe('clones across namespaces', () => {
  it.each([
    { name: 'by-pvc', source: { source: { pvc: { namespace: GOLDEN, name: 'fedora' } } } },
    {
      name: 'by-datasource',
      source: { sourceRef: { kind: 'DataSource', namespace: GOLDEN, name: 'fedora' } },
    },
  ])('$name: an allowed clone succeeds with the source disk', async ({ name, source }) => {
    await createAdmitted(dataVolume(name, source));
    const dv = await waitForPhase(env, VMS, name, 'Succeeded', 120_000);
    expect(dv.status?.progress).toBe('100.0%');
    // The short token was checked once and replaced by one bound to this DataVolume.
    expect(dv.metadata.annotations?.['cdi.kubevirt.io/storage.extended.clone.token']).toMatch(
      /^[\w-]+\.[\w-]+\.[\w-]+$/,
    );
    // Filled through the network path: the target's upload server ended with CDI's clone text.
    const running = dv.status?.conditions?.find((c) => c.type === 'Running');
    expect(running?.message).toBe('Clone Complete');
    const pvc = await env.core.readNamespacedPersistentVolumeClaim({ namespace: VMS, name });
    expect(pvc.metadata?.annotations?.['cdi.kubevirt.io/uploadClientName']).toBe(
      `${GOLDEN}/fedora-${VMS}/${name}`,
    );
    expect(await sameDisk(rawRef, await volumeData(env, VMS, name))).toBe(true);
    const reasons = (
      await eventsUntil(name, (es) => es.some((e) => e.reason === 'CloneSucceeded'))
    ).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['CloneScheduled', 'CloneSucceeded']));
    // The source pod and its Secret are gone once the clone is done.
    const pods = await env.core.listNamespacedPod({ namespace: GOLDEN });
    expect(
      pods.items.map((p) => p.metadata?.name ?? '').filter((n) => n.endsWith('-source-pod')),
    ).toEqual([]);
  });

  it('refuses a user without datavolumes/source in the source namespace', async () => {
    const answer = await admit(
      dataVolume('denied', { source: { pvc: { namespace: GOLDEN, name: 'fedora' } } }),
      { username: 'alice', groups: ['system:authenticated'] },
    );
    expect(answer).toEqual({
      allowed: false,
      message: `User alice has insufficient permissions in clone source namespace ${GOLDEN}`,
    });
  });

  it('a clone within a namespace also waits while its source is in use', async () => {
    // The clone made by the first case is the source here, in the DataVolume's own namespace.
    await env.core.createNamespacedPod({
      namespace: VMS,
      body: {
        metadata: { name: 'vm-using-by-pvc', namespace: VMS },
        spec: {
          containers: [{ name: 'vm', image: 'busybox', command: ['sh', '-c', 'sleep 600'] }],
          volumes: [{ name: 'disk', persistentVolumeClaim: { claimName: 'by-pvc' } }],
        },
      },
    });
    await apply(
      env,
      JSON.stringify(
        dataVolume('local-in-use', { source: { pvc: { namespace: VMS, name: 'by-pvc' } } }),
      ),
    );
    const events = await eventsUntil('local-in-use', (es) =>
      es.some((e) => e.reason === 'CloneSourceInUse'),
    );
    expect(events.find((e) => e.reason === 'CloneSourceInUse')?.message).toBe(
      `pod ${VMS}/vm-using-by-pvc using PersistentVolumeClaim by-pvc`,
    );
    expect((await waitForDv(env, VMS, 'local-in-use', () => true)).status?.phase).not.toBe(
      'Succeeded',
    );
    await env.core.deleteNamespacedPod({
      namespace: VMS,
      name: 'vm-using-by-pvc',
      gracePeriodSeconds: 0,
    });
    await waitForPhase(env, VMS, 'local-in-use', 'Succeeded', 120_000);
    expect(await sameDisk(rawRef, await volumeData(env, VMS, 'local-in-use'))).toBe(true);
  });

  it('waits while another pod uses the source, then proceeds', async () => {
    await env.core.createNamespacedPod({
      namespace: GOLDEN,
      body: {
        metadata: { name: 'vm-using-fedora', namespace: GOLDEN },
        spec: {
          containers: [{ name: 'vm', image: 'busybox', command: ['sh', '-c', 'sleep 600'] }],
          volumes: [{ name: 'disk', persistentVolumeClaim: { claimName: 'fedora' } }],
        },
      },
    });
    await createAdmitted(
      dataVolume('in-use', { source: { pvc: { namespace: GOLDEN, name: 'fedora' } } }),
    );
    const events = await eventsUntil('in-use', (es) =>
      es.some((e) => e.reason === 'CloneSourceInUse'),
    );
    expect(events.find((e) => e.reason === 'CloneSourceInUse')?.message).toBe(
      `pod ${GOLDEN}/vm-using-fedora using PersistentVolumeClaim fedora`,
    );
    const waiting = await waitForDv(env, VMS, 'in-use', () => true);
    expect(waiting.status?.phase).not.toBe('Succeeded');
    await env.core.deleteNamespacedPod({
      namespace: GOLDEN,
      name: 'vm-using-fedora',
      gracePeriodSeconds: 0,
    });
    await waitForPhase(env, VMS, 'in-use', 'Succeeded', 120_000);
    expect(await sameDisk(rawRef, await volumeData(env, VMS, 'in-use'))).toBe(true);
  });
});
