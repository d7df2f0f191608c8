// SPDX-License-Identifier: Apache-2.0
/**
 * The registry client against a small real HTTP server on 127.0.0.1 that speaks the token flow
 * (`WWW-Authenticate: Bearer realm=...`), which the Debian registry of the integration tests
 * cannot do without an external token service.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { interceptors, type Dispatcher } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../common/logger.js';
import { buildDispatcher } from '../http-dispatcher.js';
import { basicAuthorization, parseWwwAuthenticate } from './auth.js';
import { describeRegistryError, RegistryClient } from './client.js';
import { parseImageReference } from './reference.js';

describe('parseWwwAuthenticate', () => {
  it.each([
    {
      what: 'a bearer challenge with scope',
      header:
        'Bearer realm="https://auth.io/token",service="registry.io",scope="repository:a/b:pull"',
      expected: [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.io/token',
            service: 'registry.io',
            scope: 'repository:a/b:pull',
          },
        },
      ],
    },
    {
      what: 'basic with a realm',
      header: 'Basic realm="basic-realm"',
      expected: [{ scheme: 'basic', params: { realm: 'basic-realm' } }],
    },
    {
      what: 'two challenges, unquoted value and spaces',
      header: 'Basic realm=r , Bearer realm="x", error="invalid_token"',
      expected: [
        { scheme: 'basic', params: { realm: 'r' } },
        { scheme: 'bearer', params: { realm: 'x', error: 'invalid_token' } },
      ],
    },
    {
      what: 'an escaped quote',
      header: 'Bearer realm="a\\"b"',
      expected: [{ scheme: 'bearer', params: { realm: 'a"b' } }],
    },
  ])('parses $what', ({ header, expected }) => {
    expect(parseWwwAuthenticate(header)).toEqual(expected);
  });
});

describe('describeRegistryError', () => {
  it.each([
    {
      what: 'a distribution error body',
      status: 404,
      body: '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}',
      text: 'manifest unknown',
    },
    {
      what: 'code and message that differ',
      status: 404,
      body: '{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}',
      text: 'name unknown: repository name not known to registry',
    },
    { what: 'an empty 401', status: 401, body: '', text: 'unauthorized: authentication required' },
    { what: 'an HTML 502', status: 502, body: '<html>', text: 'status 502' },
  ])('words $what', ({ status, body, text }) => {
    expect(describeRegistryError(status, body)).toBe(text);
  });
});

const MANIFEST = Buffer.from('{"schemaVersion":2,"layers":[]}');
const MANIFEST_DIGEST = `sha256:${createHash('sha256').update(MANIFEST).digest('hex')}`;
const BLOB = Buffer.from('blob bytes');
const BLOB_DIGEST = `sha256:${createHash('sha256').update(BLOB).digest('hex')}`;

interface Seen {
  tokenQueries: string[];
  tokenAuth: (string | undefined)[];
}

/** A registry demanding bearer tokens, its token server, and redirected blob storage. */
function tokenRegistry(seen: Seen, users: Record<string, string>): http.Server {
  const server = http.createServer((req, res) => {
    const port = (server.address() as AddressInfo).port;
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const challenge = (scope?: string): void => {
      res.statusCode = 401;
      res.setHeader(
        'www-authenticate',
        `Bearer realm="http://127.0.0.1:${port}/token",service="test-registry"` +
          (scope === undefined ? '' : `,scope="${scope}"`),
      );
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    };
    if (url.pathname === '/token') {
      seen.tokenQueries.push(url.search);
      seen.tokenAuth.push(req.headers.authorization);
      const auth = req.headers.authorization;
      if (auth === undefined) return res.end('{"token":"anon-token"}');
      const ok = Object.entries(users).some(
        ([u, p]) => auth === basicAuthorization({ username: u, password: p }),
      );
      res.statusCode = ok ? 200 : 401;
      return res.end(ok ? '{"access_token":"user-token"}' : '');
    }
    if (url.pathname.startsWith('/storage/'))
      return res.end(url.pathname.endsWith('bad') ? 'tampered' : BLOB);
    const bearer = req.headers.authorization ?? '';
    if (!/^Bearer (anon|user)-token$/.test(bearer)) {
      return challenge(url.pathname === '/v2/' ? undefined : 'repository:disk:pull');
    }
    if (url.pathname === '/v2/') return res.end('{}');
    if (url.pathname.startsWith('/v2/disk/manifests/')) {
      res.setHeader('content-type', 'application/vnd.oci.image.manifest.v1+json');
      return res.end(MANIFEST);
    }
    if (url.pathname.startsWith('/v2/disk/blobs/')) {
      res.statusCode = 307;
      res.setHeader('location', `/storage/${url.pathname.endsWith(BLOB_DIGEST) ? 'ok' : 'bad'}`);
      return res.end();
    }
    res.statusCode = 404;
    res.end(
      '{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}',
    );
  });
  return server;
}

describe('RegistryClient with bearer tokens', () => {
  let server: http.Server;
  let dispatcher: Dispatcher;
  let seen: Seen;
  const signal = new AbortController().signal;

  beforeEach(async () => {
    seen = { tokenQueries: [], tokenAuth: [] };
    server = tokenRegistry(seen, { alice: 'pw' });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = await buildDispatcher({ insecureTls: true });
    dispatcher = base.compose(interceptors.redirect({ maxRedirections: 3 }));
  });
  afterEach(async () => {
    await dispatcher.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const client = (credentials?: { username: string; password: string }): RegistryClient =>
    new RegistryClient({
      ref: parseImageReference(
        `docker://127.0.0.1:${(server.address() as AddressInfo).port}/disk:v1`,
      ),
      dispatcher,
      credentials,
      insecure: true,
      logger: silentLogger,
    });

  it.each([
    { what: 'anonymously', creds: undefined, auth: undefined },
    {
      what: 'with credentials',
      creds: { username: 'alice', password: 'pw' },
      auth: 'Basic YWxpY2U6cHc=',
    },
  ])(
    'gets a token $what, asks for pull on the repository, then the manifest',
    async ({ creds, auth }) => {
      const m = await client(creds).getManifest('v1', signal);
      expect(m.bytes.equals(MANIFEST)).toBe(true);
      expect(m.digest).toBe(MANIFEST_DIGEST);
      expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(seen.tokenQueries[0]).toBe('?service=test-registry&scope=repository%3Adisk%3Apull');
      expect(seen.tokenAuth[0]).toBe(auth);
    },
  );

  it('fails in words when the token server refuses the credentials', async () => {
    await expect(
      client({ username: 'alice', password: 'nope' }).getManifest('v1', signal),
    ).rejects.toMatchObject({
      code: 'CDI_REGISTRY_PULL_FAILED',
      httpStatus: 401,
    });
  });

  it('follows the blob redirect to storage and checks a small blob digest', async () => {
    const c = client();
    expect((await c.getSmallBlob(BLOB_DIGEST, signal)).equals(BLOB)).toBe(true);
    await expect(c.getSmallBlob(`sha256:${'1'.repeat(64)}`, signal)).rejects.toMatchObject({
      code: 'CDI_REGISTRY_DIGEST_MISMATCH',
    });
  });

  it('checks the digest of a manifest pulled by digest', async () => {
    const c = client();
    await expect(c.getManifest(MANIFEST_DIGEST, signal)).resolves.toMatchObject({
      digest: MANIFEST_DIGEST,
    });
    await expect(c.getManifest(`sha256:${'2'.repeat(64)}`, signal)).rejects.toMatchObject({
      code: 'CDI_REGISTRY_DIGEST_MISMATCH',
    });
  });

  it('reports an unknown repository with the registry words', async () => {
    const c = new RegistryClient({
      ref: parseImageReference(
        `docker://127.0.0.1:${(server.address() as AddressInfo).port}/other:v1`,
      ),
      dispatcher,
      insecure: true,
      logger: silentLogger,
    });
    const err = await c.getManifest('v1', signal).then(
      () => undefined,
      (e: unknown) => e as { code: string; httpStatus: number; message: string },
    );
    expect(err?.code).toBe('CDI_REGISTRY_PULL_FAILED');
    expect(err?.httpStatus).toBe(404);
    expect(err?.message).toContain('repository name not known to registry');
  });
});
