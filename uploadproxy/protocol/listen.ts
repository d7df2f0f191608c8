// SPDX-License-Identifier: Apache-2.0
/** `host:port` listen addresses of the upload verbs, and starting a server on one. */
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CdiError, ErrorCodes } from '../../common/errors.js';

/** A parsed listen address. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses `host:port` (`[::1]:8443` for IPv6); `CDI_INVALID_ARGUMENT` when malformed. */
export function parseListen(text: string): ListenAddress {
  const colon = text.lastIndexOf(':');
  const port = Number(text.slice(colon + 1));
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  if (
    colon <= 0 ||
    text.slice(colon + 1) === '' ||
    !Number.isInteger(port) ||
    port < 0 ||
    port > 65535 ||
    host === ''
  )
    throw new CdiError(
      ErrorCodes.InvalidArgument,
      `listen address ${JSON.stringify(text)} is not host:port`,
    );
  return { host, port };
}

/** A listening server: its port, base URL, and a close that ends open connections too. */
export interface ListeningServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Starts `server` on `host:port` (default 127.0.0.1, a free port) and resolves once it listens;
 * the three upload processes share this.
 */
export async function listenOn(
  server: HttpServer,
  options: {
    readonly host?: string | undefined;
    readonly port?: number | undefined;
    readonly tls: boolean;
  },
): Promise<ListeningServer> {
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `${options.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
