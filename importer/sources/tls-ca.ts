// SPDX-License-Identifier: Apache-2.0
/**
 * CA bundle loading shared by the network sources (http, s3, registry): CDI trusts the system
 * roots plus every file of the cert dir (`IMPORTER_CERT_DIR`, a mounted ConfigMap) and of the
 * proxy cert dir (`IMPORTER_PROXY_CERT_DIR`), like Go's `AppendCertsFromPEM` on each file.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { rootCertificates } from 'node:tls';

import { CdiError, ErrorCodes, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads every regular file of `dir` (following symlinks, skipping dot entries such as a
 * ConfigMap's `..data`) and returns the PEM certificates found, in file-name order. Files with no
 * certificate are skipped with a warning, as Go ignores them.
 */
export async function readCertDir(dir: string, logger?: Logger): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  } catch (err) {
    throw new CdiError(
      ErrorCodes.InvalidConfig,
      `cannot read cert dir ${dir}: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
  const certs: string[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const st = await stat(file).catch(() => undefined);
    if (st?.isFile() !== true) continue;
    const found = (await readFile(file, 'utf8')).match(PEM_CERT);
    if (found === null) {
      logger?.warn('no PEM certificate in cert file, ignored', { file });
      continue;
    }
    certs.push(...found);
  }
  return certs;
}

/**
 * The CA list to pass as Node's `ca` option: the bundled roots plus the certificates of every
 * given directory; `undefined` (Node's default roots) when no directory is given.
 */
export async function loadCaBundle(
  dirs: readonly (string | undefined)[],
  logger?: Logger,
): Promise<string[] | undefined> {
  const present = dirs.filter((d): d is string => d !== undefined && d !== '');
  if (present.length === 0) return undefined;
  const extra = (await Promise.all(present.map((d) => readCertDir(d, logger)))).flat();
  return [...rootCertificates, ...extra];
}
