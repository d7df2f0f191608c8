// SPDX-License-Identifier: Apache-2.0
/**
 * The TCP relay on 127.0.0.1 the fault-injecting relays build on: each client connection gets
 * its own upstream connection to the target, the caller decides what flows between them, and
 * either end failing or closing tears both down.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/** A listening relay. */
export interface LoopbackRelay {
  readonly port: number;
  /** Destroys every open connection, then stops listening. */
  close(): Promise<void>;
}

/** Listens on an ephemeral loopback port; `relay` wires each client to its upstream. */
export async function startLoopbackRelay(
  targetPort: number,
  relay: (client: Socket, upstream: Socket) => void,
): Promise<LoopbackRelay> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    relay(client, upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
