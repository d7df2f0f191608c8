// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox's certificate authority and serving certificate (EC P-256, SANs 127.0.0.1 and
 * localhost), issued with the project's own X.509 issuer (common/x509.ts), and the kubeconfig that
 * trusts the CA and carries a bearer token.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { issueCertificate } from '../../common/x509.js';

const TEN_YEARS_MS = 3650 * 86_400_000;

/** PEM material of the sandbox. */
export interface SandboxPki {
  readonly caPem: string;
  readonly caKeyPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** A certificate for `hosts` (IP addresses and DNS names; the first is the common name). */
function leafFor(
  ca: { readonly caPem: string; readonly caKeyPem: string },
  hosts: readonly string[],
): { keyPem: string; certPem: string } {
  return issueCertificate({
    commonName: hosts[0] ?? 'localhost',
    // Serving and client use: the front-proxy certificate is presented as a client.
    usage: 'server',
    alsoClient: true,
    dnsNames: hosts.filter((h) => isIP(h) === 0),
    ipAddresses: hosts.filter((h) => isIP(h) !== 0),
    validForMs: TEN_YEARS_MS,
    issuer: { keyPem: ca.caKeyPem, certPem: ca.caPem },
  });
}

/**
 * Makes a CA (common name `caName`) and a certificate it signs for `hosts` (IP addresses and DNS
 * names; the first is the common name), written to `dir` as `ca.crt`, `ca.key`, `tls.crt` and
 * `tls.key`. Reused by tests that need their own HTTPS servers trusted through a CA bundle, and
 * for the front-proxy client certificate.
 */
export async function makePki(
  dir: string,
  hosts: readonly string[] = ['127.0.0.1', 'localhost'],
  caName = 'sandbox-ca',
): Promise<SandboxPki> {
  await mkdir(dir, { recursive: true });
  const ca = issueCertificate({ commonName: caName, usage: 'ca', validForMs: TEN_YEARS_MS });
  const leaf = leafFor({ caPem: ca.certPem, caKeyPem: ca.keyPem }, hosts);
  const pki = {
    caPem: ca.certPem,
    caKeyPem: ca.keyPem,
    certPem: leaf.certPem,
    keyPem: leaf.keyPem,
  };
  await Promise.all([
    writeFile(join(dir, 'ca.crt'), pki.caPem),
    writeFile(join(dir, 'ca.key'), pki.caKeyPem, { mode: 0o600 }),
    writeFile(join(dir, 'tls.crt'), pki.certPem),
    writeFile(join(dir, 'tls.key'), pki.keyPem, { mode: 0o600 }),
  ]);
  return pki;
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
  const leaf = leafFor(ca, hosts);
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  await writeFile(certFile, leaf.certPem);
  await writeFile(keyFile, leaf.keyPem, { mode: 0o600 });
  return { certFile, keyFile };
}
