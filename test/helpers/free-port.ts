// SPDX-License-Identifier: Apache-2.0
import { createServer } from 'node:net';

/**
 * A TCP port free on 127.0.0.1 right now, for a process that must be told its port up front
 * (docker-registry, the upload proxy, the importer's metrics endpoint).
 */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return typeof addr === 'object' && addr !== null ? addr.port : 0;
}
