// SPDX-License-Identifier: Apache-2.0
/**
 * Test-time TLS material: a throw-away CA and a server certificate for `127.0.0.1`/`localhost`,
 * generated with the `openssl` binary into a temp dir (never committed, CONTRIBUTING.md).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A generated CA plus one server certificate signed by it. */
export interface TestTls {
  /** The temp dir holding every file below. */
  readonly dir: string;
  /** A directory holding only `ca.crt`: what `--cert-dir` / `IMPORTER_CERT_DIR` points at. */
  readonly caDir: string;
  readonly caCertPath: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** Removes the temp dir. */
  cleanup(): Promise<void>;
}

/** Options of {@link createTestTls}. */
export interface TestTlsOptions {
  /** Subject alternative names of the server certificate; default 127.0.0.1, ::1 and localhost. */
  readonly altNames?: readonly string[];
  /** Common name of the CA (tests that need two distinct CAs). */
  readonly caName?: string;
}

async function openssl(cwd: string, args: readonly string[]): Promise<void> {
  await run('openssl', args, { cwd });
}

/**
 * Generates an EC P-256 CA and a server certificate (serverAuth, SANs for the loopback names).
 * EC keys keep this well under a second.
 */
export async function createTestTls(options: TestTlsOptions = {}): Promise<TestTls> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cdi-tls-'));
  const caDir = path.join(dir, 'ca');
  const altNames = options.altNames ?? ['IP:127.0.0.1', 'IP:::1', 'DNS:localhost'];
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(
    dir,
    ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2']
      .concat(['-subj', `/CN=${options.caName ?? 'cdi-test-ca'}`])
      .concat(['-addext', 'basicConstraints=critical,CA:TRUE'])
      .concat(['-addext', 'keyUsage=critical,keyCertSign,cRLSign']),
  );
  await openssl(dir, [
    'req',
    ...ec,
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=localhost',
  ]);
  await writeFile(
    path.join(dir, 'server.ext'),
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${altNames.join(',')}`,
      '',
    ].join('\n'),
  );
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'server.ext',
  ]);
  const caPem = await readFile(path.join(dir, 'ca.crt'), 'utf8');
  await mkdir(caDir);
  await writeFile(path.join(caDir, 'ca.crt'), caPem);
  return {
    dir,
    caDir,
    caCertPath: path.join(caDir, 'ca.crt'),
    caPem,
    certPem: await readFile(path.join(dir, 'server.crt'), 'utf8'),
    keyPem: await readFile(path.join(dir, 'server.key'), 'utf8'),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
