// SPDX-License-Identifier: Apache-2.0
/**
 * The DataVolume mutating webhook against the sandbox API: real SubjectAccessReviews for the
 * request's user (the sandbox authorizes its admin and `system:masters`, nobody else), real
 * DataSource reads, and the review served over HTTPS by the API server's route as the API server
 * would call it.
 */
import { request } from 'node:https';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloneTokenProblem, CLONE_TOKEN_ANNOTATION } from '../../common/clone-token.js';
import { createLogger } from '../../common/logger.js';
import { kubeAdmissionDeps } from '../../uploadproxy/apiserver/admission-kube.js';
import {
  DATAVOLUME_MUTATE_PATH,
  admitDataVolume,
  type AdmissionDeps,
} from '../../uploadproxy/apiserver/datavolume-mutate.js';
import { allowAll, startTokenApiServer } from '../../uploadproxy/apiserver/token-api.js';
import { generateTokenKeys, type TokenKeys } from '../../uploadproxy/protocol/token.js';
import { issueCertificate } from '../../common/x509.js';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubeConfigFor } from '../sandbox/testing.js';

let sandbox: Sandbox;
let kc: KubeConfig;
let keys: TokenKeys;
let deps: AdmissionDeps;

const ADMIN = { username: 'sandbox-admin', groups: ['system:masters', 'system:authenticated'] };
const ALICE = { username: 'alice', groups: ['system:authenticated'], uid: 'u-1' };

beforeAll(async () => {
  sandbox = await startSandbox();
  kc = kubeConfigFor(sandbox);
  keys = await generateTokenKeys();
  deps = kubeAdmissionDeps(kc, keys.privateKey);
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of ['golden', 'vms'])
    await core.createNamespace({ body: { metadata: { name } } });
  const custom = kc.makeApiClient(CustomObjectsApi);
  await custom.createNamespacedCustomObject({
    group: 'cdi.kubevirt.io',
    version: 'v1beta1',
    namespace: 'golden',
    plural: 'datasources',
    body: {
      apiVersion: 'cdi.kubevirt.io/v1beta1',
      kind: 'DataSource',
      metadata: { name: 'fedora', namespace: 'golden' },
      spec: { source: { pvc: { namespace: 'golden', name: 'fedora-42' } } },
    },
  });
});

afterAll(async () => {
  await sandbox.stop();
});

function review(
  spec: Record<string, unknown>,
  user: Record<string, unknown>,
  operation = 'CREATE',
  annotations?: Record<string, string>,
): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'r-1',
      operation,
      namespace: 'vms',
      name: 'vm-disk',
      resource: { group: 'cdi.kubevirt.io', version: 'v1beta1', resource: 'datavolumes' },
      userInfo: user,
      object: {
        apiVersion: 'cdi.kubevirt.io/v1beta1',
        kind: 'DataVolume',
        metadata: {
          name: 'vm-disk',
          namespace: 'vms',
          ...(annotations === undefined ? {} : { annotations }),
        },
        spec,
      },
    },
  };
}

interface Answer {
  uid: string;
  allowed: boolean;
  patch?: string;
  patchType?: string;
  status?: { code: number; message: string };
}

function responseOf(r: Record<string, unknown>): Answer {
  return r['response'] as Answer;
}

function tokenIn(answer: Answer): string | undefined {
  if (answer.patch === undefined) return undefined;
  const ops = JSON.parse(Buffer.from(answer.patch, 'base64').toString('utf8')) as {
    op: string;
    path: string;
    value: unknown;
  }[];
  const op = ops[0];
  if (op === undefined) return undefined;
  if (op.path === '/metadata/annotations')
    return (op.value as Record<string, string>)[CLONE_TOKEN_ANNOTATION];
  return op.path === '/metadata/annotations/cdi.kubevirt.io~1storage.clone.token'
    ? (op.value as string)
    : undefined;
}

const storage = { storage: { resources: { requests: { storage: '1Gi' } } } };
const fromGolden = { source: { pvc: { namespace: 'golden', name: 'fedora-42' } }, ...storage };
const grant = {
  sourceNamespace: 'golden',
  sourceName: 'fedora-42',
  targetNamespace: 'vms',
  targetName: 'vm-disk',
};

describe('DataVolume mutating webhook', () => {
  it.each([
    { what: 'source.pvc in another namespace', spec: fromGolden, annotations: undefined },
    {
      what: 'sourceRef to a DataSource in another namespace',
      spec: { sourceRef: { kind: 'DataSource', name: 'fedora', namespace: 'golden' }, ...storage },
      annotations: { 'vm.kubevirt.io/os': 'fedora' },
    },
  ])('adds a valid clone token for an allowed user ($what)', async ({ spec, annotations }) => {
    const answer = responseOf(
      await admitDataVolume(review(spec, ADMIN, 'CREATE', annotations), deps),
    );
    expect(answer).toMatchObject({ uid: 'r-1', allowed: true, patchType: 'JSONPatch' });
    const token = tokenIn(answer);
    expect(token).toBeDefined();
    expect(await cloneTokenProblem(keys.publicKey, token ?? '', grant)).toBeUndefined();
    // The token names this clone only.
    expect(
      await cloneTokenProblem(keys.publicKey, token ?? '', { ...grant, targetName: 'other' }),
    ).toBe('invalid token');
  });

  it('refuses a user without datavolumes/source in the source namespace, with CDI message', async () => {
    const answer = responseOf(await admitDataVolume(review(fromGolden, ALICE), deps));
    expect(answer.allowed).toBe(false);
    expect(answer.status).toMatchObject({
      code: 422,
      message: 'User alice has insufficient permissions in clone source namespace golden',
    });
    expect(answer.patch).toBeUndefined();
  });

  it.each([
    {
      what: 'a same-namespace clone',
      spec: { source: { pvc: { name: 'x' } }, ...storage },
      user: ALICE,
    },
    {
      what: 'an import',
      spec: { source: { http: { url: 'http://x/y' } }, ...storage },
      user: ALICE,
    },
    { what: 'an update of an allowed clone', spec: fromGolden, user: ADMIN, operation: 'UPDATE' },
  ])('allows $what unchanged', async ({ spec, user, operation }) => {
    const answer = responseOf(await admitDataVolume(review(spec, user, operation), deps));
    expect(answer).toMatchObject({ allowed: true });
    expect(answer.patch).toBeUndefined();
  });

  it('refuses a sourceRef to a DataSource that does not exist', async () => {
    const spec = {
      sourceRef: { kind: 'DataSource', name: 'nope', namespace: 'golden' },
      ...storage,
    };
    const answer = responseOf(await admitDataVolume(review(spec, ADMIN), deps));
    expect(answer).toMatchObject({ allowed: false, status: { code: 400 } });
    expect(answer.status?.message).toMatch(/"nope" not found/);
  });

  it('is served over HTTPS at /datavolume-mutate as the API server calls it', async () => {
    const ca = issueCertificate({ commonName: 'ca', usage: 'ca', validForMs: 3_600_000 });
    const leaf = issueCertificate({
      commonName: 'cdi-api',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
      validForMs: 3_600_000,
      issuer: ca,
    });
    const server = await startTokenApiServer({
      tls: { certPem: leaf.certPem, keyPem: leaf.keyPem },
      signingKey: keys.privateKey,
      webhooks: { [DATAVOLUME_MUTATE_PATH]: (r) => admitDataVolume(r, deps) },
      authenticator: () => Promise.resolve(undefined),
      authorizer: allowAll,
      host: '127.0.0.1',
      port: 0,
      logger: createLogger({ component: 'test', level: 'error' }),
    });
    try {
      const body = JSON.stringify(review(fromGolden, ALICE));
      const answer = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const req = request(
          `${server.url}${DATAVOLUME_MUTATE_PATH}?timeout=10s`,
          { method: 'POST', ca: ca.certPem, headers: { 'content-type': 'application/json' } },
          (res) => {
            const parts: Buffer[] = [];
            res.on('data', (c: Buffer) => parts.push(c));
            res.on('end', () => {
              try {
                resolve(
                  JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>,
                );
              } catch (err) {
                reject(err instanceof Error ? err : new Error(String(err)));
              }
            });
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      expect(answer).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
      expect(responseOf(answer)).toMatchObject({
        uid: 'r-1',
        allowed: false,
        status: { code: 422 },
      });
    } finally {
      await server.close();
    }
  });
});
