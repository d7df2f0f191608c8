// SPDX-License-Identifier: Apache-2.0
/**
 * A TCP relay that cuts the first connection after a given number of client bytes: a dropped
 * network in the middle of an upload, below TLS and HTTP. Later connections pass untouched.
 */
import { startLoopbackRelay } from './loopback-relay.js';

/** A running relay. */
export interface CuttingProxy {
  readonly port: number;
  /** Connections cut so far. */
  readonly cuts: () => number;
  close(): Promise<void>;
}

/** Relays 127.0.0.1:port → target, cutting the first `cutConnections` connections after `cutAfter` client bytes. */
export async function startCuttingProxy(o: {
  readonly targetPort: number;
  readonly cutAfter: number;
  readonly cutConnections?: number;
}): Promise<CuttingProxy> {
  let cuts = 0;
  let connections = 0;
  const relay = await startLoopbackRelay(o.targetPort, (client, upstream) => {
    const index = connections++;
    const cutting = index < (o.cutConnections ?? 1);
    let seen = 0;
    client.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (cutting && seen > o.cutAfter) {
        cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  return { port: relay.port, cuts: () => cuts, close: () => relay.close() };
}
