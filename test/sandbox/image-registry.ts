// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox node's registry: Debian's `docker-registry` on 127.0.0.1 holding the cdi image
 * (the archive of `npm run image`, pushed with skopeo as `cdi-ts/cdi:latest`, the name deploy/
 * and the controller's pods use), and the registry mirrors that make images named elsewhere
 * resolve there, as a containerd registry mirror does (by default docker.io, so `cdi-ts/cdi`
 * is `docker.io/cdi-ts/cdi`). Tests push their own images (container disks) to `host`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startRegistry } from '../helpers/registry-server.js';
import type { RegistryMirrors } from '../containers/image-store.js';

const run = promisify(execFile);

/** The repository and tag the cdi image is pushed as. */
export const CDI_IMAGE_NAME = 'cdi-ts/cdi:latest';

/** A running node registry. */
export interface NodeRegistry {
  /** `127.0.0.1:PORT` (plain HTTP). */
  readonly host: string;
  /** Registry → mirror: the defaults and the caller's, the caller's winning. */
  readonly mirrors: RegistryMirrors;
  close(): Promise<void>;
}

/** Starts the registry and pushes `archive` into it as {@link CDI_IMAGE_NAME}. */
export async function startNodeRegistry(
  archive: string,
  mirrors: RegistryMirrors = {},
): Promise<NodeRegistry> {
  const registry = await startRegistry();
  try {
    await run('skopeo', [
      '--insecure-policy',
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      `oci-archive:${archive}`,
      `docker://${registry.host}/${CDI_IMAGE_NAME}`,
    ]);
  } catch (err) {
    await registry.close();
    throw err;
  }
  return {
    host: registry.host,
    mirrors: { 'docker.io': registry.host, ...mirrors },
    close: () => registry.close(),
  };
}
