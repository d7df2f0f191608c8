// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox's certificate authority and serving certificate (EC P-256, SANs 127.0.0.1 and
 * localhost), made with the `openssl` CLI, and the kubeconfig that trusts the CA and carries a
 * bearer token.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CdiError, ErrorCodes } from '../../common/errors.js';

const run = promisify(execFile);

/** PEM material of the sandbox. */
export interface SandboxPki {
  readonly caPem: string;
  readonly caKeyPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await run('openssl', [...args], { cwd });
  } catch (err) {
    throw new CdiError(ErrorCodes.Internal, `openssl ${args[0] ?? ''} failed`, { cause: err });
  }
}

/**
 * Makes a CA (common name `caName`) and a certificate it signs for `hosts` (IP addresses and DNS
 * names; the first is the common name), in `dir`. Reused by tests that need their own HTTPS
 * servers trusted through a CA bundle, and for the front-proxy client certificate.
 */
export async function makePki(
  dir: string,
  hosts: readonly string[] = ['127.0.0.1', 'localhost'],
  caName = 'sandbox-ca',
): Promise<SandboxPki> {
  await mkdir(dir, { recursive: true });
  const days = '3650';
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-sha256',
      '-days',
      days,
      '-subj',
      `/CN=${caName}`,
      '-out',
      'ca.crt',
    ],
    dir,
  );
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'tls.key'], dir);
  await openssl(
    [
      'req',
      '-new',
      '-key',
      'tls.key',
      '-subj',
      `/CN=${hosts[0] ?? 'localhost'}`,
      '-out',
      'tls.csr',
    ],
    dir,
  );
  const san = hosts.map((h) => (/^[\d.]+$/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  await writeFile(
    join(dir, 'ext.cnf'),
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'tls.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      days,
      '-sha256',
      '-extfile',
      'ext.cnf',
      '-out',
      'tls.crt',
    ],
    dir,
  );
  const [caPem, caKeyPem, certPem, keyPem] = await Promise.all(
    ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'].map((f) => readFile(join(dir, f), 'utf8')),
  );
  return {
    caPem: caPem ?? '',
    caKeyPem: caKeyPem ?? '',
    certPem: certPem ?? '',
    keyPem: keyPem ?? '',
  };
}

/** A random bearer token. */
export function makeToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Writes a kubeconfig (cluster, user and context all named `sandbox`). */
export async function writeKubeconfig(
  path: string,
  server: string,
  caPem: string,
  token: string,
): Promise<void> {
  const ca = Buffer.from(caPem).toString('base64');
  const text = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: sandbox',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    '- name: sandbox',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: sandbox',
    '  context:',
    '    cluster: sandbox',
    '    user: sandbox',
    '    namespace: default',
    'current-context: sandbox',
    '',
  ].join('\n');
  await writeFile(path, text, { mode: 0o600 });
}

/**
 * Issues a serving certificate for `hosts` from an existing CA (the sandbox's), in `dir`
 * (`tls.crt`, `tls.key`); returns the two file paths.
 */
export async function issueLeaf(
  dir: string,
  ca: { readonly caPem: string; readonly caKeyPem: string },
  hosts: readonly string[],
): Promise<{ readonly certFile: string; readonly keyFile: string }> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'ca.crt'), ca.caPem);
  await writeFile(join(dir, 'ca.key'), ca.caKeyPem, { mode: 0o600 });
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'tls.key'], dir);
  await openssl(
    [
      'req',
      '-new',
      '-key',
      'tls.key',
      '-subj',
      `/CN=${hosts[0] ?? 'localhost'}`,
      '-out',
      'tls.csr',
    ],
    dir,
  );
  const san = hosts.map((h) => (/^[\d.]+$/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  await writeFile(
    join(dir, 'ext.cnf'),
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`,
  );
  await openssl(
    [
      ...['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key'],
      ...['-CAcreateserial', '-days', '3650', '-sha256', '-extfile', 'ext.cnf', '-out', 'tls.crt'],
    ],
    dir,
  );
  return { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
}
