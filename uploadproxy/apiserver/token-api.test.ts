// SPDX-License-Identifier: Apache-2.0
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { issueCertificate } from '../../common/x509.js';
import {
  allowAll,
  remoteHeaderAuthenticator,
  startTokenApiServer,
  type AccessQuestion,
  type Authorizer,
  type TokenApiServer,
} from './token-api.js';
import { subjectAccessReviewAuthorizer } from './kube-auth.js';
import { generateTokenKeys, verifyUploadToken, type TokenKeys } from '../protocol/token.js';

const GV = '/apis/upload.cdi.kubevirt.io/v1beta1';
let keys: TokenKeys;
let api: TokenApiServer | undefined;

beforeAll(async () => {
  keys = await generateTokenKeys();
});
afterEach(async () => {
  await api?.close();
  api = undefined;
});

async function start(authorizer: Authorizer): Promise<TokenApiServer> {
  api = await startTokenApiServer({
    signingKey: keys.privateKey,
    authenticator: remoteHeaderAuthenticator({ trustHeaders: true }),
    authorizer,
    logger: silentLogger,
  });
  return api;
}

async function post(
  server: TokenApiServer,
  ns: string,
  body: unknown,
  headers: Record<string, string> = { 'x-remote-user': 'alice', 'x-remote-group': 'devs' },
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(`${server.url}${GV}/namespaces/${ns}/uploadtokenrequests`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

const tokenRequest = (pvcName: unknown): unknown => ({
  apiVersion: 'upload.cdi.kubevirt.io/v1beta1',
  kind: 'UploadTokenRequest',
  metadata: { name: 'x' },
  spec: { pvcName },
});

describe('token API', () => {
  it('serves the discovery documents an aggregated API needs', async () => {
    const server = await start(allowAll);
    const get = async (p: string): Promise<unknown> =>
      (await request(`${server.url}${p}`)).body.json();
    expect(await get('/apis')).toMatchObject({
      kind: 'APIGroupList',
      groups: [{ name: 'upload.cdi.kubevirt.io' }],
    });
    expect(await get('/apis/upload.cdi.kubevirt.io')).toMatchObject({
      kind: 'APIGroup',
      preferredVersion: { version: 'v1beta1' },
    });
    expect(await get(GV)).toMatchObject({
      kind: 'APIResourceList',
      resources: [
        {
          name: 'uploadtokenrequests',
          namespaced: true,
          kind: 'UploadTokenRequest',
          verbs: ['create'],
        },
      ],
    });
  });

  it('create answers 201 with status.token for the PVC, asking the authorizer the right question', async () => {
    const questions: AccessQuestion[] = [];
    const server = await start((q) => {
      questions.push(q);
      return Promise.resolve({ allowed: true });
    });
    const { status, json } = await post(server, 'ns1', tokenRequest('disk'));
    expect(status).toBe(201);
    expect(json).toMatchObject({
      kind: 'UploadTokenRequest',
      metadata: { namespace: 'ns1' },
      spec: { pvcName: 'disk' },
    });
    const token = (json['status'] as { token: string }).token;
    expect(await verifyUploadToken(keys.publicKey, token)).toEqual({
      namespace: 'ns1',
      pvc: 'disk',
    });
    expect(questions).toEqual([
      {
        user: { name: 'alice', groups: ['devs'], extra: {} },
        namespace: 'ns1',
        verb: 'create',
        group: 'upload.cdi.kubevirt.io',
        resource: 'uploadtokenrequests',
      },
    ]);
  });

  it.each([
    {
      what: 'denied by the authorizer',
      allowed: false,
      headers: undefined,
      body: tokenRequest('d'),
      status: 401,
      text: /no RBAC/,
    },
    {
      what: 'no identity',
      allowed: true,
      headers: {},
      body: tokenRequest('d'),
      status: 401,
      text: /Unauthorized/,
    },
    {
      what: 'no pvcName',
      allowed: true,
      headers: undefined,
      body: tokenRequest(undefined),
      status: 400,
      text: /pvcName/,
    },
    {
      what: 'a bad pvcName',
      allowed: true,
      headers: undefined,
      body: tokenRequest('Bad_Name'),
      status: 400,
      text: /pvcName/,
    },
    {
      what: 'not JSON',
      allowed: true,
      headers: undefined,
      body: '{',
      status: 400,
      text: /not JSON/,
    },
    {
      what: 'another namespace in metadata',
      allowed: true,
      headers: undefined,
      body: {
        kind: 'UploadTokenRequest',
        metadata: { namespace: 'other' },
        spec: { pvcName: 'd' },
      },
      status: 400,
      text: /does not match/,
    },
  ])('refuses $what with $status', async ({ allowed, headers, body, status, text }) => {
    const server = await start(() =>
      Promise.resolve({ allowed, reason: 'no RBAC rule allows it' }),
    );
    const res = await post(server, 'ns1', body, headers);
    expect(res.status).toBe(status);
    expect(res.json).toMatchObject({ kind: 'Status', status: 'Failure', code: status });
    expect(res.json['message']).toMatch(text);
  });

  it('only create is served on the resource', async () => {
    const server = await start(allowAll);
    const res = await request(`${server.url}${GV}/namespaces/ns1/uploadtokenrequests`);
    expect(res.statusCode).toBe(405);
    await res.body.dump();
  });
});

describe('subjectAccessReviewAuthorizer', () => {
  let kube: Server;
  const reviews: unknown[] = [];
  beforeAll(async () => {
    kube = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { spec: { user: string } };
        reviews.push({ method: req.method, url: req.url, body });
        const allowed = body.spec.user === 'alice';
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            ...body,
            status: { allowed, reason: allowed ? 'RBAC: allowed' : 'no rule' },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => kube.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => kube.close(() => resolve()));
  });

  it.each([
    { what: 'an allowed user', user: 'alice', allowed: true },
    { what: 'a denied user', user: 'mallory', allowed: false },
  ])('asks the API server about $what', async ({ user, allowed }) => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: 'c',
          server: `http://127.0.0.1:${(kube.address() as AddressInfo).port}`,
          skipTLSVerify: true,
        },
      ],
      users: [{ name: 'u', token: 'secret' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const decision = await subjectAccessReviewAuthorizer(kc)({
      user: { name: user, groups: ['g'] },
      namespace: 'ns1',
      verb: 'create',
      group: 'upload.cdi.kubevirt.io',
      resource: 'uploadtokenrequests',
    });
    expect(decision.allowed).toBe(allowed);
    expect(reviews.at(-1)).toMatchObject({
      method: 'POST',
      url: '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      body: {
        kind: 'SubjectAccessReview',
        spec: {
          user,
          groups: ['g'],
          resourceAttributes: {
            namespace: 'ns1',
            verb: 'create',
            group: 'upload.cdi.kubevirt.io',
            resource: 'uploadtokenrequests',
          },
        },
      },
    });
  });
});

describe('request-header authentication', () => {
  it('keeps repeated X-Remote-Group lines apart, as the aggregator sends them', async () => {
    const seen: AccessQuestion[] = [];
    const server = await start((q) => {
      seen.push(q);
      return Promise.resolve({ allowed: true });
    });
    const res = await request(`${server.url}${GV}/namespaces/ns/uploadtokenrequests`, {
      method: 'POST',
      // Flat name/value pairs: the only way to send one header name twice.
      headers: [
        'content-type',
        'application/json',
        'x-remote-user',
        'alice',
        'x-remote-group',
        'system:masters',
        'x-remote-group',
        'system:authenticated',
        'x-remote-extra-scopes',
        'a',
        'x-remote-extra-scopes',
        'b',
      ],
      body: JSON.stringify(tokenRequest('disk')),
    });
    await res.body.dump();
    expect(res.statusCode).toBe(201);
    expect(seen[0]?.user.groups).toEqual(['system:masters', 'system:authenticated']);
    expect(seen[0]?.user.extra).toEqual({ scopes: ['a', 'b'] });
  });

  it.each([
    { what: 'the front proxy (allowed name)', cn: 'front-proxy-client', ca: 'front', want: 201 },
    { what: 'another name from the same CA', cn: 'someone', ca: 'front', want: 401 },
    { what: 'the allowed name from another CA', cn: 'front-proxy-client', ca: 'other', want: 401 },
    { what: 'no client certificate', cn: undefined, ca: 'front', want: 401 },
  ])('trusts the headers only from $what → $want', async ({ cn, ca, want }) => {
    const DAY = 86_400_000;
    const front = issueCertificate({ commonName: 'front-proxy-ca', usage: 'ca', validForMs: DAY });
    const other = issueCertificate({ commonName: 'other-ca', usage: 'ca', validForMs: DAY });
    const serving = issueCertificate({
      commonName: 'cdi-api',
      usage: 'server',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      validForMs: DAY,
      issuer: front,
    });
    api = await startTokenApiServer({
      tls: { keyPem: serving.keyPem, certPem: serving.certPem, clientCaPem: front.certPem },
      signingKey: keys.privateKey,
      authenticator: remoteHeaderAuthenticator({
        trustHeaders: false,
        allowedNames: ['front-proxy-client'],
      }),
      authorizer: allowAll,
      logger: silentLogger,
    });
    const client =
      cn === undefined
        ? undefined
        : issueCertificate({
            commonName: cn,
            usage: 'client',
            validForMs: DAY,
            issuer: ca === 'front' ? front : other,
          });
    const dispatcher = new Agent({
      connect: {
        ca: front.certPem,
        ...(client === undefined ? {} : { key: client.keyPem, cert: client.certPem }),
      },
    });
    try {
      const res = await request(`${api.url}${GV}/namespaces/ns/uploadtokenrequests`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-remote-user': 'alice' },
        body: JSON.stringify(tokenRequest('disk')),
        dispatcher,
      });
      await res.body.dump();
      expect(res.statusCode).toBe(want);
    } finally {
      await dispatcher.close();
    }
  });
});
