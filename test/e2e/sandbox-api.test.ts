// SPDX-License-Identifier: Apache-2.0
/**
 * API semantics of the sandbox cluster through the real @kubernetes/client-node: CRUD, status
 * subresource, resourceVersion conflicts, Status errors, selectors, generateName, watch resume
 * by an informer after the server closes its watch, finalizers, garbage collection in the
 * background, foreground and orphan modes, and APIService aggregation.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import { makePki } from '../sandbox/pki.js';
import { ROOT_CA_CONFIGMAP } from '../sandbox/service-accounts.js';
import { kubeConfigFor, waitForDeletion, waitForObject } from '../sandbox/testing.js';

let sandbox: Sandbox;
let kc: KubeConfig;
let core: CoreV1Api;
let custom: CustomObjectsApi;

beforeAll(async () => {
  sandbox = await startSandbox();
  kc = kubeConfigFor(sandbox);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
});

afterAll(async () => {
  await sandbox.stop();
});

async function apiError(p: Promise<unknown>): Promise<{ code: number; reason: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiException) {
      const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as {
        reason: string;
      };
      return { code: err.code, reason: body.reason };
    }
    throw err;
  }
  throw new Error('expected the call to fail');
}

function cm(name: string, labels: Record<string, string> = {}): V1ConfigMap {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels }, data: { k: name } };
}

describe('CRUD and errors', () => {
  it('creates, reads, updates, patches and deletes with rising resourceVersions', async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: cm('crud'),
    });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    const read = await core.readNamespacedConfigMap({ name: 'crud', namespace: 'default' });
    expect(read.data).toEqual({ k: 'crud' });
    read.data = { k: 'changed' };
    const updated = await core.replaceNamespacedConfigMap({
      name: 'crud',
      namespace: 'default',
      body: read,
    });
    expect(Number(updated.metadata?.resourceVersion)).toBeGreaterThan(
      Number(created.metadata?.resourceVersion),
    );
    const patched = await core.patchNamespacedConfigMap(
      { name: 'crud', namespace: 'default', body: { data: { extra: 'x' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(patched.data).toEqual({ k: 'changed', extra: 'x' });
    const jsonPatched = await core.patchNamespacedConfigMap(
      { name: 'crud', namespace: 'default', body: [{ op: 'remove', path: '/data/extra' }] },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    expect(jsonPatched.data).toEqual({ k: 'changed' });
    await core.deleteNamespacedConfigMap({ name: 'crud', namespace: 'default' });
    expect(
      await apiError(core.readNamespacedConfigMap({ name: 'crud', namespace: 'default' })),
    ).toEqual({
      code: 404,
      reason: 'NotFound',
    });
  });

  it.each([
    {
      what: 'a second create of the same name is 409 AlreadyExists',
      call: async () => {
        await core.createNamespacedConfigMap({ namespace: 'default', body: cm('dup') });
        return core.createNamespacedConfigMap({ namespace: 'default', body: cm('dup') });
      },
      code: 409,
      reason: 'AlreadyExists',
    },
    {
      what: 'an update with a stale resourceVersion is 409 Conflict',
      call: async () => {
        const first = await core.createNamespacedConfigMap({
          namespace: 'default',
          body: cm('stale'),
        });
        await core.replaceNamespacedConfigMap({
          name: 'stale',
          namespace: 'default',
          body: { ...first, data: { a: '1' } },
        });
        return core.replaceNamespacedConfigMap({
          name: 'stale',
          namespace: 'default',
          body: { ...first, data: { a: '2' } },
        });
      },
      code: 409,
      reason: 'Conflict',
    },
    {
      what: 'an invalid name is 422 Invalid',
      call: () => core.createNamespacedConfigMap({ namespace: 'default', body: cm('Not_Valid') }),
      code: 422,
      reason: 'Invalid',
    },
    {
      what: 'a namespace that does not exist is 404',
      call: () => core.createNamespacedConfigMap({ namespace: 'nowhere', body: cm('x') }),
      code: 404,
      reason: 'NotFound',
    },
  ])('$what', async ({ call, code, reason }) => {
    expect(await apiError(call())).toEqual({ code, reason });
  });

  it('names objects from generateName', async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { generateName: 'gen-' }, data: {} },
    });
    expect(created.metadata?.name).toMatch(/^gen-[a-z0-9]{5}$/);
  });

  it('filters lists by label and field selectors', async () => {
    await core.createNamespace({ body: { metadata: { name: 'sel' } } });
    for (const [name, tier] of [
      ['a', 'web'],
      ['b', 'db'],
      ['c', 'web'],
    ] as const) {
      await core.createNamespacedConfigMap({ namespace: 'sel', body: cm(name, { tier, n: name }) });
    }
    const names = async (labelSelector?: string, fieldSelector?: string): Promise<string[]> =>
      (
        await core.listNamespacedConfigMap({
          namespace: 'sel',
          ...(labelSelector === undefined ? {} : { labelSelector }),
          ...(fieldSelector === undefined ? {} : { fieldSelector }),
        })
      ).items
        .map((i) => i.metadata?.name ?? '')
        // Every namespace holds the cluster's CA, as on a cluster.
        .filter((n) => n !== ROOT_CA_CONFIGMAP);
    expect(await names('tier=web')).toEqual(['a', 'c']);
    expect(await names('tier!=web')).toEqual(['b']);
    expect(await names('n in (a,b)')).toEqual(['a', 'b']);
    expect(await names('tier=web,n notin (a)')).toEqual(['c']);
    expect(await names(undefined, 'metadata.name=b')).toEqual(['b']);
    expect(await names(undefined, 'metadata.name!=b')).toEqual(['a', 'c']);
  });
});

describe('custom resources', () => {
  const dv = (name: string): Record<string, unknown> => ({
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    metadata: { name },
    spec: { source: { blank: {} }, storage: { resources: { requests: { storage: '1Mi' } } } },
  });

  it('keeps status apart from spec and bumps generation only for spec changes', async () => {
    const created = (await custom.createNamespacedCustomObject({
      group: 'cdi.kubevirt.io',
      version: 'v1beta1',
      namespace: 'default',
      plural: 'datavolumes',
      body: { ...dv('status-split'), status: { phase: 'Ignored' } },
    })) as { metadata: { generation: number }; status?: unknown };
    expect(created.status).toBeUndefined();
    expect(created.metadata.generation).toBe(1);
    const withStatus = (await custom.patchNamespacedCustomObjectStatus(
      {
        group: 'cdi.kubevirt.io',
        version: 'v1beta1',
        namespace: 'default',
        plural: 'datavolumes',
        name: 'status-split',
        body: {
          status: { phase: 'ImportInProgress', progress: '12.00%' },
          spec: { contentType: 'archive' },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as {
      metadata: { generation: number };
      spec: Record<string, unknown>;
      status: Record<string, unknown>;
    };
    expect(withStatus.status).toEqual({ phase: 'ImportInProgress', progress: '12.00%' });
    expect(withStatus.spec['contentType']).toBeUndefined();
    expect(withStatus.metadata.generation).toBe(1);
    const specChanged = (await custom.patchNamespacedCustomObject(
      {
        group: 'cdi.kubevirt.io',
        version: 'v1beta1',
        namespace: 'default',
        plural: 'datavolumes',
        name: 'status-split',
        body: { spec: { contentType: 'kubevirt' }, status: { phase: 'Dropped' } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as { metadata: { generation: number }; status: Record<string, unknown> };
    expect(specChanged.metadata.generation).toBe(2);
    expect(specChanged.status['phase']).toBe('ImportInProgress');
  });

  it('prunes fields the CRD schema does not declare and refuses values it forbids', async () => {
    const created = (await custom.createNamespacedCustomObject({
      group: 'cdi.kubevirt.io',
      version: 'v1beta1',
      namespace: 'default',
      plural: 'datavolumes',
      body: { ...dv('pruned'), spec: { ...(dv('pruned')['spec'] as object), bogus: 1 } },
    })) as { spec: Record<string, unknown> };
    expect(created.spec['bogus']).toBeUndefined();
    const status = (await custom.patchNamespacedCustomObjectStatus(
      {
        group: 'cdi.kubevirt.io',
        version: 'v1beta1',
        namespace: 'default',
        plural: 'datavolumes',
        name: 'pruned',
        body: { status: { phase: 'Pending', notAField: 'x' } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as { status: Record<string, unknown> };
    expect(status.status).toEqual({ phase: 'Pending' });
    expect(
      await apiError(
        custom.createNamespacedCustomObject({
          group: 'cdi.kubevirt.io',
          version: 'v1beta1',
          namespace: 'default',
          plural: 'datavolumes',
          body: {
            ...dv('bad-enum'),
            spec: { ...(dv('bad-enum')['spec'] as object), contentType: 'iso' },
          },
        }),
      ),
    ).toEqual({ code: 422, reason: 'Invalid' });
  });

  it('serves the same object at v1alpha1 and v1beta1', async () => {
    await custom.createNamespacedCustomObject({
      group: 'cdi.kubevirt.io',
      version: 'v1alpha1',
      namespace: 'default',
      plural: 'datavolumes',
      body: { ...dv('old-version'), apiVersion: 'cdi.kubevirt.io/v1alpha1' },
    });
    const beta = (await custom.getNamespacedCustomObject({
      group: 'cdi.kubevirt.io',
      version: 'v1beta1',
      namespace: 'default',
      plural: 'datavolumes',
      name: 'old-version',
    })) as { apiVersion: string };
    expect(beta.apiVersion).toBe('cdi.kubevirt.io/v1beta1');
  });
});

describe('watch and informers', () => {
  it('an informer resumes after the server closes its watch and misses nothing', async () => {
    await core.createNamespace({ body: { metadata: { name: 'inf' } } });
    const informer = makeInformer(kc, '/api/v1/namespaces/inf/configmaps', () =>
      core.listNamespacedConfigMap({ namespace: 'inf' }),
    );
    const log = new EventLog();
    informer.on('add', (o) => log.push(`add:${o.metadata?.name ?? ''}`));
    informer.on('update', (o) =>
      log.push(`update:${o.metadata?.name ?? ''}:${o.data?.['k'] ?? ''}`),
    );
    informer.on('delete', (o) => log.push(`delete:${o.metadata?.name ?? ''}`));
    informer.on('connect', () => log.push('connect'));
    await core.createNamespacedConfigMap({ namespace: 'inf', body: cm('before') });
    await informer.start();
    try {
      await core.createNamespacedConfigMap({ namespace: 'inf', body: cm('one') });
      await log.until((e) => e.includes('add:one'));
      sandbox.closeWatches();
      // Changes made while no watch is open must still reach the informer after it resumes.
      await core.patchNamespacedConfigMap(
        { name: 'one', namespace: 'inf', body: { data: { k: 'two' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      await core.deleteNamespacedConfigMap({ name: 'before', namespace: 'inf' });
      await log.until((e) => e.includes('delete:before') && e.includes('update:one:two'));
      expect(log.entries.filter((e) => e === 'add:before')).toHaveLength(1);
      expect(log.entries.filter((e) => e === 'connect').length).toBeGreaterThanOrEqual(2);
      expect(
        informer
          .list('inf')
          .map((o) => o.metadata?.name)
          .filter((n) => n !== ROOT_CA_CONFIGMAP),
      ).toEqual(['one']);
    } finally {
      await informer.stop();
    }
  });

  it('a watch from a resourceVersion replays later changes only', async () => {
    const first = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: cm('replay-1'),
    });
    await core.createNamespacedConfigMap({ namespace: 'default', body: cm('replay-2') });
    const seen = await collectWatch(kc, '/api/v1/namespaces/default/configmaps', {
      resourceVersion: first.metadata?.resourceVersion,
      labelSelector: 'replay',
    });
    expect(seen).toEqual([]);
    const all = await collectWatch(kc, '/api/v1/namespaces/default/configmaps', {
      resourceVersion: first.metadata?.resourceVersion,
      fieldSelector: 'metadata.name=replay-2',
    });
    expect(all).toEqual(['ADDED:replay-2']);
  });
});

/** Collects the events of a watch the server ends after one second (`timeoutSeconds`). */
async function collectWatch(
  k: KubeConfig,
  path: string,
  params: Record<string, string | undefined>,
): Promise<string[]> {
  const events: string[] = [];
  await new Promise<void>((resolve, reject) => {
    new Watch(k)
      .watch(
        path,
        { ...params, timeoutSeconds: 1 },
        (type: string, obj: { metadata: { name: string } }) =>
          events.push(`${type}:${obj.metadata.name}`),
        () => resolve(),
      )
      .catch(reject);
  });
  return events;
}

/** A log of informer events that resolves waiters as soon as their condition holds. */
class EventLog {
  readonly entries: string[] = [];
  #waiters: { cond: (e: readonly string[]) => boolean; resolve: () => void }[] = [];
  push(entry: string): void {
    this.entries.push(entry);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.cond(this.entries)) return true;
      w.resolve();
      return false;
    });
  }
  until(cond: (e: readonly string[]) => boolean): Promise<void> {
    if (cond(this.entries)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ cond, resolve }));
  }
}

describe('deletion', () => {
  const owned = (name: string, owner: V1ConfigMap): V1ConfigMap => ({
    ...cm(name),
    metadata: {
      name,
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          name: owner.metadata?.name ?? '',
          uid: owner.metadata?.uid ?? '',
          blockOwnerDeletion: true,
        },
      ],
    },
  });

  it('keeps an object with finalizers until they are removed', async () => {
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { ...cm('fin'), metadata: { name: 'fin', finalizers: ['example.com/hold'] } },
    });
    await core.deleteNamespacedConfigMap({ name: 'fin', namespace: 'default' });
    const held = await core.readNamespacedConfigMap({ name: 'fin', namespace: 'default' });
    expect(held.metadata?.deletionTimestamp).toBeDefined();
    await core.patchNamespacedConfigMap(
      { name: 'fin', namespace: 'default', body: { metadata: { finalizers: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(
      (await apiError(core.readNamespacedConfigMap({ name: 'fin', namespace: 'default' }))).code,
    ).toBe(404);
  });

  it.each([
    {
      what: 'background deletion removes dependents after the owner',
      policy: 'Background',
      dependentsRemain: false,
    },
    {
      what: 'foreground deletion removes dependents before the owner',
      policy: 'Foreground',
      dependentsRemain: false,
    },
    {
      what: 'orphan deletion keeps dependents without the owner reference',
      policy: 'Orphan',
      dependentsRemain: true,
    },
  ])('$what', async ({ policy, dependentsRemain }) => {
    const ns = `gc-${policy.toLowerCase()}`;
    await core.createNamespace({ body: { metadata: { name: ns } } });
    const owner = await core.createNamespacedConfigMap({ namespace: ns, body: cm('owner') });
    await core.createNamespacedConfigMap({ namespace: ns, body: owned('child-1', owner) });
    await core.createNamespacedConfigMap({ namespace: ns, body: owned('child-2', owner) });
    await core.deleteNamespacedConfigMap({
      name: 'owner',
      namespace: ns,
      propagationPolicy: policy,
    });
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    await waitForDeletion(kc, path, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      name: 'owner',
      namespace: ns,
    });
    if (dependentsRemain) {
      const child = await waitForObject<V1ConfigMap>(kc, {
        path: path,
        name: 'child-1',
        until: (o) => (o.metadata?.ownerReferences ?? []).length === 0,
      });
      expect(child.metadata?.deletionTimestamp).toBeUndefined();
    } else {
      await waitForDeletion(kc, path, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        name: 'child-1',
        namespace: ns,
      });
      await waitForDeletion(kc, path, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        name: 'child-2',
        namespace: ns,
      });
    }
  });

  it('deleting a namespace deletes what it holds', async () => {
    await core.createNamespace({ body: { metadata: { name: 'doomed' } } });
    await core.createNamespacedConfigMap({ namespace: 'doomed', body: cm('inside') });
    await core.deleteNamespace({ name: 'doomed' });
    await waitForDeletion(kc, '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      name: 'doomed',
    });
    expect(
      (await apiError(core.readNamespacedConfigMap({ name: 'inside', namespace: 'doomed' }))).code,
    ).toBe(404);
  });
});

describe('aggregation', () => {
  let upstream: Server;
  afterAll(() => {
    upstream.close();
  });

  it('proxies an APIService group to the Service it names', async () => {
    const pki = await makePki(join(sandbox.dataDir, 'agg-pki'), ['cdi-api.default.svc']);
    const seen: string[] = [];
    upstream = createServer({ key: pki.keyPem, cert: pki.certPem }, (req, res) => {
      seen.push(`${req.method ?? ''} ${req.url ?? ''} ${String(req.headers['x-remote-user'])}`);
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'UploadTokenRequest', status: { token: 'abc' } }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    await core.createNamespacedService({
      namespace: 'default',
      body: {
        metadata: { name: 'cdi-api' },
        spec: { type: 'ExternalName', externalName: '127.0.0.1' },
      },
    });
    await custom.createClusterCustomObject({
      group: 'apiregistration.k8s.io',
      version: 'v1',
      plural: 'apiservices',
      body: {
        apiVersion: 'apiregistration.k8s.io/v1',
        kind: 'APIService',
        metadata: { name: 'v1beta1.upload.cdi.kubevirt.io' },
        spec: {
          group: 'upload.cdi.kubevirt.io',
          version: 'v1beta1',
          service: { namespace: 'default', name: 'cdi-api', port },
          caBundle: Buffer.from(pki.caPem).toString('base64'),
          groupPriorityMinimum: 1000,
          versionPriority: 15,
        },
      },
    });
    const answer = (await custom.createNamespacedCustomObject({
      group: 'upload.cdi.kubevirt.io',
      version: 'v1beta1',
      namespace: 'default',
      plural: 'uploadtokenrequests',
      body: {
        apiVersion: 'upload.cdi.kubevirt.io/v1beta1',
        kind: 'UploadTokenRequest',
        metadata: { name: 'x' },
        spec: { pvcName: 'p' },
      },
    })) as { status: { token: string } };
    expect(answer.status.token).toBe('abc');
    expect(seen).toEqual([
      'POST /apis/upload.cdi.kubevirt.io/v1beta1/namespaces/default/uploadtokenrequests sandbox-admin',
    ]);
  });
});
