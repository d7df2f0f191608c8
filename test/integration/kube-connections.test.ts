// SPDX-License-Identifier: Apache-2.0
/**
 * The controller's API calls share their TLS connections: counted on a real HTTPS server that
 * answers like the API server, with client-node's own clients as the controller makes them.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shareConnections } from '../../controller/shared-connections.js';
import { createTestTls, type TestTls } from '../helpers/tls.js';

let tls: TestTls;
let server: Server;
let port = 0;
let connections = 0;

beforeAll(async () => {
  tls = await createTestTls();
  server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const name = req.url?.split('/').at(-1) ?? '';
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
  });
  server.on('secureConnection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await tls.cleanup();
});

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'c',
        server: `https://127.0.0.1:${port}`,
        caData: Buffer.from(tls.caPem).toString('base64'),
        skipTLSVerify: false,
      },
    ],
    users: [{ name: 'u', token: 'secret' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

/** TLS connections the server accepted for `calls` reads, one after the other. */
async function connectionsFor(kc: KubeConfig, calls: number): Promise<number> {
  const core = kc.makeApiClient(CoreV1Api);
  const before = connections;
  for (let i = 0; i < calls; i++) {
    const ns = await core.readNamespace({ name: `ns-${i}` });
    expect(ns.metadata?.name).toBe(`ns-${i}`);
  }
  return connections - before;
}

describe('shared connections', () => {
  it('client-node alone opens a connection per call', async () => {
    expect(await connectionsFor(kubeConfig(), 10)).toBe(10);
  });

  it('with shareConnections, calls reuse the connections already open', async () => {
    // A call may start before the last one's connection went back to the pool: two at most.
    expect(await connectionsFor(shareConnections(kubeConfig()), 10)).toBeLessThanOrEqual(2);
  });

  it("a second burst of concurrent calls reuses the first burst's connections", async () => {
    const core = shareConnections(kubeConfig()).makeApiClient(CoreV1Api);
    const burst = async (): Promise<number> => {
      const before = connections;
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => core.readNamespace({ name: `x${i}` })),
      );
      return connections - before;
    };
    expect(await burst()).toBeGreaterThan(0);
    expect(await burst()).toBeLessThan(10);
  });
});
