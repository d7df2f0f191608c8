// SPDX-License-Identifier: Apache-2.0
/**
 * One poll of a DataImportCron's registry source: the manifest digest its tag points at now,
 * read with the importer's own registry client (ping, auth challenge, manifest by tag). The digest
 * is the one of the top manifest as served (an index for multi-platform images), which is what
 * CDI's poller records and what `docker://repo@digest` pulls again.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interceptors } from 'undici';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { buildDispatcher } from '../../importer/sources/http-dispatcher.js';
import { RegistryClient } from '../../importer/sources/registry/client.js';
import {
  isInsecureRegistry,
  manifestReference,
  parseImageReference,
} from '../../importer/sources/registry/reference.js';

/** A poll gives up after this long; the next schedule tries again. */
export const POLL_TIMEOUT_MS = 30_000;
const MAX_REDIRECTIONS = 5;

/** What a poll needs. */
export interface PollOptions {
  /** `docker://host/repo:tag`. */
  readonly url: string;
  /** CDIConfig `insecureRegistries`. */
  readonly insecureRegistries: readonly string[];
  /** Registry user and password (the template's `secretRef`). */
  readonly credentials?: { readonly username: string; readonly password: string } | undefined;
  /** PEM CA certificates to trust (the template's `certConfigMap`). */
  readonly caCertificates?: readonly string[] | undefined;
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

/** Resolves the source's tag to its current manifest digest (`sha256:...`). */
export async function pollDigest(options: PollOptions): Promise<string> {
  const ref = parseImageReference(options.url);
  const insecure = isInsecureRegistry(ref, options.insecureRegistries);
  const certDir = await writeCaDir(options.caCertificates);
  const base = await buildDispatcher({
    ...(certDir === undefined ? {} : { certDir }),
    insecureTls: insecure,
    connections: 1,
    logger: options.log,
  });
  const dispatcher = base.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }));
  const signal = AbortSignal.any([
    AbortSignal.timeout(POLL_TIMEOUT_MS),
    ...(options.signal === undefined ? [] : [options.signal]),
  ]);
  try {
    const client = new RegistryClient({
      ref,
      dispatcher,
      credentials: options.credentials,
      insecure,
      logger: options.log,
    });
    const manifest = await client.getManifest(manifestReference(ref), signal);
    if (!manifest.digest.startsWith('sha256:')) {
      throw new CdiError(ErrorCodes.RegistryPullFailed, `unexpected digest ${manifest.digest}`);
    }
    return manifest.digest;
  } finally {
    await base.close().catch(() => undefined);
    if (certDir !== undefined) await rm(certDir, { recursive: true, force: true });
  }
}

async function writeCaDir(pems: readonly string[] | undefined): Promise<string | undefined> {
  if (pems === undefined || pems.length === 0) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'cdi-cron-ca-'));
  await Promise.all(pems.map((pem, i) => writeFile(join(dir, `ca-${i}.crt`), pem)));
  return dir;
}
