// SPDX-License-Identifier: Apache-2.0
/**
 * The proxy dials the address a resolver gives (a Service's clusterIP) but checks the upload
 * server's certificate, and sends SNI, for the backend's `servername`: upload server
 * certificates carry the Service's DNS names only. Also `--upload-server-address` parsing.
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { seedUploadPki, type SeededUploadPki } from '../../test/sandbox/upload-pki-seed.js';
import { parseAddressMode } from './main.js';
import { startUploadProxy, type UploadProxy } from './proxy.js';
import { generateTokenKeys, signUploadToken, type TokenKeys } from '../protocol/token.js';

let dir: string;
let pki: SeededUploadPki;
let keys: TokenKeys;
let server: Server;
let port: number;
const sni: (string | false | null)[] = [];

function objectData(name: string, key: string): string {
  const o = pki.objects.find((x) => x.metadata.name === name);
  const v = o?.data[key] ?? '';
  return o?.kind === 'Secret' ? Buffer.from(v, 'base64').toString('utf8') : v;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cdi-servername-'));
  pki = await seedUploadPki(dir);
  keys = await generateTokenKeys();
  const cert = await pki.issueUploadServerCert('default', 'disk');
  server = createServer(
    {
      cert: cert.certPem,
      key: cert.keyPem,
      ca: pki.uploadClientCaPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      sni.push((req.socket as TLSSocket).servername);
      req.resume();
      req.on('end', () => res.writeHead(200).end('ok'));
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});

async function startProxy(servername: string | undefined): Promise<UploadProxy> {
  return startUploadProxy({
    tokenKey: keys.publicKey,
    resolver: () =>
      Promise.resolve({
        url: `https://127.0.0.1:${port}`,
        ready: true,
        ...(servername === undefined ? {} : { servername }),
      }),
    upstreamTls: {
      clientCertPem: objectData('cdi-uploadserver-client-cert', 'tls.crt'),
      clientKeyPem: objectData('cdi-uploadserver-client-cert', 'tls.key'),
      serverCaPem: pki.uploadServerCaPem,
    },
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger,
  });
}

describe('upload server servername', () => {
  it.each([
    { what: "the Service's DNS name", servername: 'cdi-upload-disk.default.svc', status: 200 },
    { what: 'none (the IP address is checked)', servername: undefined, status: 502 },
    { what: "another Service's name", servername: 'cdi-upload-other.default.svc', status: 502 },
  ])('servername $what → $status', async ({ servername, status }) => {
    const proxy = await startProxy(servername);
    try {
      sni.length = 0;
      const token = await signUploadToken(keys.privateKey, { namespace: 'default', pvc: 'disk' });
      const res = await fetch(`${proxy.url}/v1beta1/upload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: 'data',
      });
      await res.arrayBuffer();
      expect(res.status).toBe(status);
      if (status === 200) expect(sni).toEqual([servername]);
    } finally {
      await proxy.close();
    }
  });
});

describe('parseAddressMode', () => {
  it.each([
    { what: 'default', value: undefined, mode: 'dns' },
    { what: 'dns', value: 'dns', mode: 'dns' },
    { what: 'cluster-ip', value: 'cluster-ip', mode: 'cluster-ip' },
  ])('$what → $mode', ({ value, mode }) => {
    expect(parseAddressMode(value)).toBe(mode);
  });

  it('refuses anything else, naming the flag', () => {
    expect(() => parseAddressMode('ip')).toThrow(
      /--upload-server-address ip: must be dns or cluster-ip/,
    );
  });
});
