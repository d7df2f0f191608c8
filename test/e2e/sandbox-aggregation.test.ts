// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox as the token API's host: TokenReview and SubjectAccessReview answers, the
 * front-proxy authentication config, and `kubectl create` of an UploadTokenRequest through the
 * aggregated API served by the real `cdi apiserver` (PKI seeded in place of the controller's).
 */
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePublicKey, verifyUploadToken } from '../../uploadproxy/protocol/token.js';
import type { Sandbox } from '../sandbox/index.js';
import { makePki } from '../sandbox/pki.js';
import { kubeConfigFor, kubectl } from '../sandbox/testing.js';
import type { SeededUploadPki } from '../sandbox/upload-pki-seed.js';
import { startSeededSandbox, type SeededSandbox } from './seeded-sandbox.js';

let sandbox: Sandbox;
let kc: KubeConfig;
let seeded: SeededSandbox;
let pki: SeededUploadPki;

beforeAll(async () => {
  seeded = await startSeededSandbox();
  ({ sandbox, pki } = seeded);
  kc = kubeConfigFor(sandbox);
});

afterAll(async () => {
  await seeded.stop();
});

describe('TokenReview', () => {
  it.each([
    { what: 'the sandbox token', token: (): string => sandbox.token, authenticated: true },
    { what: 'another token', token: (): string => 'not-the-token', authenticated: false },
    {
      what: 'the token with a prefix',
      token: (): string => `x${sandbox.token}`,
      authenticated: false,
    },
  ])('$what → authenticated $authenticated', async ({ token, authenticated }) => {
    const review = await kc.makeApiClient(AuthenticationV1Api).createTokenReview({
      body: { spec: { token: token() } },
    });
    expect(review.status?.authenticated ?? false).toBe(authenticated);
    if (authenticated) {
      expect(review.status?.user?.username).toBe('sandbox-admin');
      expect(review.status?.user?.groups).toEqual(['system:masters', 'system:authenticated']);
    } else expect(review.status?.user?.username).toBeUndefined();
  });
});

describe('SubjectAccessReview', () => {
  it.each([
    { what: 'the sandbox admin', user: 'sandbox-admin', groups: [], allowed: true },
    { what: 'a member of system:masters', user: 'bob', groups: ['system:masters'], allowed: true },
    { what: 'anyone else', user: 'alice', groups: ['system:authenticated'], allowed: false },
  ])('$what → allowed $allowed', async ({ user, groups, allowed }) => {
    const review = await kc.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
      body: {
        spec: {
          user,
          groups,
          resourceAttributes: {
            namespace: 'default',
            verb: 'create',
            group: 'upload.cdi.kubevirt.io',
            resource: 'uploadtokenrequests',
          },
        },
      },
    });
    expect(review.status?.allowed).toBe(allowed);
    // RBAC gives no opinion on a denial: no reason, as kube-apiserver answers.
    if (!allowed) expect(review.status?.reason ?? '').toBe('');
  });

  it('is create-only: in discovery with the verb create, and a GET is refused', async () => {
    const doc = JSON.parse(
      (await kubectl(sandbox, ['get', '--raw', '/apis/authorization.k8s.io/v1'])).stdout,
    ) as { resources: { name: string; verbs: string[] }[] };
    expect(doc.resources).toContainEqual(
      expect.objectContaining({ name: 'subjectaccessreviews', verbs: ['create'] }),
    );
    const r = await kubectl(sandbox, [
      'get',
      '--raw',
      '/apis/authentication.k8s.io/v1/tokenreviews',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('MethodNotAllowed');
  });
});

/** APIService of the token API, as the sandbox registered it. */
async function tokenApiPort(): Promise<number> {
  const out = await kubectl(sandbox, [
    ...['get', 'apiservice', 'v1beta1.upload.cdi.kubevirt.io'],
    ...['-o', 'jsonpath={.spec.service.port}'],
  ]);
  return Number(out.stdout);
}

/** POSTs an UploadTokenRequest straight to the token API (not through the sandbox). */
function direct(
  port: number,
  headers: Record<string, string>,
  clientCert?: { cert: string; key: string },
): Promise<number> {
  const body = JSON.stringify({
    apiVersion: 'upload.cdi.kubevirt.io/v1beta1',
    kind: 'UploadTokenRequest',
    metadata: { name: 'direct', namespace: 'default' },
    spec: { pvcName: 'disk' },
  });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        servername: 'cdi-api.cdi.svc',
        method: 'POST',
        path: '/apis/upload.cdi.kubevirt.io/v1beta1/namespaces/default/uploadtokenrequests',
        ca: pki.objects.find((o) => o.metadata.name === 'cdi-apiserver-signer-bundle')?.data[
          'ca-bundle.crt'
        ],
        headers: { 'content-type': 'application/json', ...headers },
        ...(clientCert ?? {}),
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('aggregated token API', () => {
  it('publishes the front-proxy CA in kube-system/extension-apiserver-authentication', async () => {
    const cm = await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({
      name: 'extension-apiserver-authentication',
      namespace: 'kube-system',
    });
    expect(cm.data?.['requestheader-client-ca-file']).toBe(
      await readFile(join(sandbox.dataDir, 'front-proxy-pki', 'ca.crt'), 'utf8'),
    );
    expect(JSON.parse(cm.data?.['requestheader-allowed-names'] ?? '[]')).toEqual([
      'front-proxy-client',
    ]);
  });

  it('kubectl create of an UploadTokenRequest returns a token for the PVC', async () => {
    const r = await kubectl(sandbox, ['create', '-f', '-', '-o', 'jsonpath={.status.token}'], {
      input: [
        'apiVersion: upload.cdi.kubevirt.io/v1beta1',
        'kind: UploadTokenRequest',
        'metadata:',
        '  name: disk',
        '  namespace: default',
        'spec:',
        '  pvcName: disk',
        '',
      ].join('\n'),
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const pub = Buffer.from(
      pki.objects.find((o) => o.metadata.name === 'cdi-api-signing-key')?.data['id_rsa.pub'] ?? '',
      'base64',
    ).toString('utf8');
    expect(await verifyUploadToken(await parsePublicKey(pub), r.stdout)).toMatchObject({
      namespace: 'default',
      pvc: 'disk',
    });
  });

  it('the token API trusts X-Remote-User only with the front-proxy client certificate', async () => {
    const port = await tokenApiPort();
    const spoof = { 'x-remote-user': 'sandbox-admin', 'x-remote-group': 'system:masters' };
    expect(await direct(port, spoof)).toBe(401);
    const dir = join(sandbox.dataDir, 'front-proxy-pki');
    const frontProxy = {
      cert: await readFile(join(dir, 'tls.crt'), 'utf8'),
      key: await readFile(join(dir, 'tls.key'), 'utf8'),
    };
    expect(await direct(port, spoof, frontProxy)).toBe(201);
    // A caller with the sandbox's token goes through TokenReview and SubjectAccessReview.
    expect(await direct(port, { authorization: `Bearer ${sandbox.token}` })).toBe(201);
    expect(await direct(port, { authorization: 'Bearer wrong' })).toBe(401);
  });
});

describe('aggregation as kube-apiserver does it', () => {
  it('checks the service name, presents front-proxy-client, and sends the real caller', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const auth = await core.readNamespacedConfigMap({
      name: 'extension-apiserver-authentication',
      namespace: 'kube-system',
    });
    const pki = await makePki(join(sandbox.dataDir, 'echo-pki'), ['echo.default.svc']);
    const seen: Record<string, unknown>[] = [];
    const upstream = createServer(
      {
        key: pki.keyPem,
        cert: pki.certPem,
        ca: auth.data?.['requestheader-client-ca-file'] ?? '',
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const socket = req.socket as TLSSocket;
        seen.push({
          sni: socket.servername,
          client: socket.getPeerCertificate().subject.CN,
          user: req.headersDistinct['x-remote-user'],
          groups: req.headersDistinct['x-remote-group'],
          authorization: req.headers.authorization,
        });
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"kind":"Echo"}');
      },
    );
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    try {
      const port = (upstream.address() as AddressInfo).port;
      await core.createNamespacedService({
        namespace: 'default',
        body: {
          metadata: { name: 'echo' },
          spec: { type: 'ExternalName', externalName: '127.0.0.1' },
        },
      });
      const apiService = (caPem: string): string =>
        JSON.stringify({
          apiVersion: 'apiregistration.k8s.io/v1',
          kind: 'APIService',
          metadata: { name: 'v1.echo.sandbox.test' },
          spec: {
            group: 'echo.sandbox.test',
            version: 'v1',
            service: { namespace: 'default', name: 'echo', port },
            caBundle: Buffer.from(caPem).toString('base64'),
            groupPriorityMinimum: 1000,
            versionPriority: 15,
          },
        });
      const get = (): Promise<number> =>
        new Promise((resolve, reject) => {
          const url = new URL('/apis/echo.sandbox.test/v1/things', sandbox.server);
          request(
            url,
            {
              ca: sandbox.caPem,
              headers: {
                authorization: `Bearer ${sandbox.token}`,
                'x-remote-user': 'mallory',
                'x-remote-group': 'system:masters',
              },
            },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          )
            .on('error', reject)
            .end();
        });
      // A caBundle that did not sign the upstream's certificate: the aggregator refuses it.
      const wrong = await makePki(join(sandbox.dataDir, 'echo-wrong-pki'), ['echo.default.svc']);
      expect(
        (await kubectl(sandbox, ['create', '-f', '-'], { input: apiService(wrong.caPem) })).code,
      ).toBe(0);
      expect(await get()).toBe(503);
      expect(seen).toEqual([]);
      expect(
        (await kubectl(sandbox, ['replace', '-f', '-'], { input: apiService(pki.caPem) })).code,
      ).toBe(0);
      expect(await get()).toBe(200);
      expect(seen).toEqual([
        {
          sni: 'echo.default.svc',
          client: 'front-proxy-client',
          user: ['sandbox-admin'],
          groups: ['system:masters', 'system:authenticated'],
          authorization: undefined,
        },
      ]);
    } finally {
      upstream.close();
    }
  });
});
