// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox provisioner: PVCs bind to hostPath PVs (a directory in Filesystem mode, a sparse
 * file of the requested size in Block mode), WaitForFirstConsumer claims bind only once a pod
 * uses them or a node is selected, PVC protection holds a claim while a pod uses it, and the
 * Delete reclaim policy removes the volume's data with the claim.
 */
import { stat } from 'node:fs/promises';
import {
  CoreV1Api,
  Watch,
  type KubeConfig,
  type V1PersistentVolumeClaim,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubeConfigFor, waitForDeletion, waitForObject } from '../sandbox/testing.js';

let sandbox: Sandbox;
let kc: KubeConfig;
let core: CoreV1Api;
const NS = 'default';
const PVCS = `/api/v1/namespaces/${NS}/persistentvolumeclaims`;

beforeAll(async () => {
  sandbox = await startSandbox();
  kc = kubeConfigFor(sandbox);
  core = kc.makeApiClient(CoreV1Api);
});

afterAll(async () => {
  await sandbox.stop();
});

function claim(
  name: string,
  opts: {
    size: string;
    mode?: 'Block' | 'Filesystem';
    sc?: string;
    annotations?: Record<string, string>;
  },
): V1PersistentVolumeClaim {
  return {
    metadata: {
      name,
      ...(opts.annotations === undefined ? {} : { annotations: opts.annotations }),
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: opts.size } },
      ...(opts.mode === undefined ? {} : { volumeMode: opts.mode }),
      ...(opts.sc === undefined ? {} : { storageClassName: opts.sc }),
    },
  };
}

function podUsing(name: string, claimName: string, script = 'exit 0'): V1Pod {
  return {
    metadata: { name },
    spec: {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image: 'busybox',
          command: ['sh', '-c', script],
          volumeMounts: [{ name: 'v', mountPath: '/data' }],
        },
      ],
      volumes: [{ name: 'v', persistentVolumeClaim: { claimName } }],
    },
  };
}

const bound = (c: V1PersistentVolumeClaim): boolean => c.status?.phase === 'Bound';

async function hostPath(pvc: V1PersistentVolumeClaim): Promise<string> {
  const pv = await core.readPersistentVolume({ name: pvc.spec?.volumeName ?? '' });
  return pv.spec?.hostPath?.path ?? '';
}

/** Resolves with the first Event matching the field selector (watched, not polled). */
async function firstEvent(fieldSelector: string): Promise<{ reason: string; message: string }> {
  let controller: AbortController | undefined;
  const event = await new Promise<{ reason: string; message: string }>((resolve, reject) => {
    new Watch(kc)
      .watch(
        `/api/v1/namespaces/${NS}/events`,
        { fieldSelector },
        (_t: string, e: { reason: string; message: string }) => resolve(e),
        () => undefined,
      )
      .then((c) => (controller = c), reject);
  });
  controller?.abort();
  return event;
}

describe('provisioning', () => {
  it.each([
    {
      what: 'a Filesystem claim binds to a directory',
      mode: 'Filesystem' as const,
      size: '10Mi',
      isDir: true,
    },
    {
      what: 'a Block claim binds to a sparse file of the requested size',
      mode: 'Block' as const,
      size: '24Mi',
      isDir: false,
    },
  ])('$what', async ({ mode, size, isDir }) => {
    const name = `claim-${mode.toLowerCase()}`;
    await core.createNamespacedPersistentVolumeClaim({
      namespace: NS,
      body: claim(name, { size, mode }),
    });
    const pvc = await waitForObject<V1PersistentVolumeClaim>(kc, {
      path: PVCS,
      name: name,
      until: bound,
    });
    expect(pvc.spec?.storageClassName).toBe('standard');
    expect(pvc.status?.capacity?.['storage']).toBe(size);
    expect(pvc.metadata?.annotations?.['pv.kubernetes.io/bind-completed']).toBe('yes');
    const pv = await core.readPersistentVolume({ name: pvc.spec?.volumeName ?? '' });
    expect(pv.status?.phase).toBe('Bound');
    expect(pv.spec?.claimRef?.uid).toBe(pvc.metadata?.uid);
    expect(pv.spec?.volumeMode).toBe(mode);
    const st = await stat(await hostPath(pvc));
    expect(st.isDirectory()).toBe(isDir);
    if (!isDir) {
      expect(st.size).toBe(24 * 1024 * 1024);
      expect(st.blocks * 512).toBeLessThan(1024 * 1024);
    }
  });

  it('a WaitForFirstConsumer claim waits for a pod, then binds with the selected node', async () => {
    await core.createNamespacedPersistentVolumeClaim({
      namespace: NS,
      body: claim('late', { size: '5Mi', sc: 'wffc' }),
    });
    const event = await firstEvent('involvedObject.name=late,reason=WaitForFirstConsumer');
    expect(event.message).toBe('waiting for first consumer to be created before binding');
    expect(
      (await core.readNamespacedPersistentVolumeClaim({ name: 'late', namespace: NS })).status
        ?.phase,
    ).toBe('Pending');
    await core.createNamespacedPod({ namespace: NS, body: podUsing('consumer', 'late') });
    const pvc = await waitForObject<V1PersistentVolumeClaim>(kc, {
      path: PVCS,
      name: 'late',
      until: bound,
    });
    expect(pvc.metadata?.annotations?.[Annotations.SelectedNode]).toBe('sandbox-node');
    await waitForObject<V1Pod>(kc, {
      path: `/api/v1/namespaces/${NS}/pods`,
      name: 'consumer',
      until: (p) => p.status?.phase === 'Succeeded',
    });
  });

  it('a WaitForFirstConsumer claim with a selected node binds without a pod', async () => {
    await core.createNamespacedPersistentVolumeClaim({
      namespace: NS,
      body: claim('preselected', {
        size: '5Mi',
        sc: 'wffc',
        annotations: { [Annotations.SelectedNode]: 'sandbox-node' },
      }),
    });
    await waitForObject<V1PersistentVolumeClaim>(kc, {
      path: PVCS,
      name: 'preselected',
      until: bound,
    });
  });
});

describe('protection and reclaim', () => {
  it('holds a deleted claim while a pod uses it, then removes the PV and its data', async () => {
    await core.createNamespacedPersistentVolumeClaim({
      namespace: NS,
      body: claim('held', { size: '5Mi' }),
    });
    const pvc = await waitForObject<V1PersistentVolumeClaim>(kc, {
      path: PVCS,
      name: 'held',
      until: bound,
    });
    const path = await hostPath(pvc);
    await core.createNamespacedPod({
      namespace: NS,
      body: podUsing('holder', 'held', 'echo x > /data/file; exec sleep 600'),
    });
    await waitForObject<V1Pod>(kc, {
      path: `/api/v1/namespaces/${NS}/pods`,
      name: 'holder',
      until: (p) => p.status?.phase === 'Running',
    });
    await core.deleteNamespacedPersistentVolumeClaim({ name: 'held', namespace: NS });
    const deleting = await core.readNamespacedPersistentVolumeClaim({
      name: 'held',
      namespace: NS,
    });
    expect(deleting.metadata?.deletionTimestamp).toBeDefined();
    expect(deleting.metadata?.finalizers).toContain('kubernetes.io/pvc-protection');
    await core.deleteNamespacedPod({ name: 'holder', namespace: NS, gracePeriodSeconds: 1 });
    await waitForDeletion(kc, PVCS, {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      name: 'held',
      namespace: NS,
    });
    await waitForDeletion(kc, '/api/v1/persistentvolumes', {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      name: pvc.spec?.volumeName ?? '',
    });
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
