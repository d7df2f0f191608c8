// SPDX-License-Identifier: Apache-2.0
/**
 * Test-time PKI of the upload path, generated with `openssl` into a temp dir: one CA, a server
 * certificate for the loopback names (used by both the proxy and the upload server), and the
 * proxy's client certificate with CDI's client name; plus an RSA key pair for upload tokens.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { generateTokenKeys, type TokenKeys } from '../../uploadproxy/protocol/token.js';

const run = promisify(execFile);

/** CDI's client name of the upload proxy (`CLIENT_NAME`). */
export const TEST_CLIENT_NAME = 'client.upload-server.cdi.kubevirt.io';

/** The generated material; PEM text and file paths. */
export interface UploadPki {
  readonly dir: string;
  readonly caPem: string;
  readonly caFile: string;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
  /** A client certificate from another CA with the right name (must be refused). */
  readonly strangerCertPem: string;
  readonly strangerKeyPem: string;
  readonly tokenKeys: TokenKeys;
  cleanup(): Promise<void>;
}

async function openssl(cwd: string, args: readonly string[]): Promise<void> {
  await run('openssl', args, { cwd });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, [
    ...['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2'],
    ...['-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE'],
    ...['-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  ]);
}

async function makeLeaf(
  dir: string,
  o: { name: string; cn: string; ca: string; ext: string[] },
): Promise<void> {
  await openssl(dir, [
    'req',
    ...EC,
    '-keyout',
    `${o.name}.key`,
    '-out',
    `${o.name}.csr`,
    '-subj',
    `/CN=${o.cn}`,
  ]);
  await writeFile(
    path.join(dir, `${o.name}.ext`),
    `${['basicConstraints=CA:FALSE', ...o.ext].join('\n')}\n`,
  );
  await openssl(dir, [
    ...['x509', '-req', '-in', `${o.name}.csr`, '-CA', `${o.ca}.crt`, '-CAkey', `${o.ca}.key`],
    ...['-CAcreateserial', '-out', `${o.name}.crt`, '-days', '2', '-extfile', `${o.name}.ext`],
  ]);
}

/** Generates the PKI (EC keys: well under a second) and a token key pair. */
export async function createUploadPki(): Promise<UploadPki> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cdi-upload-pki-'));
  await makeCa(dir, 'ca');
  await makeCa(dir, 'stranger-ca');
  await makeLeaf(dir, {
    name: 'server',
    cn: 'localhost',
    ca: 'ca',
    ext: ['extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost'],
  });
  await makeLeaf(dir, {
    name: 'client',
    cn: TEST_CLIENT_NAME,
    ca: 'ca',
    ext: ['extendedKeyUsage=clientAuth'],
  });
  await makeLeaf(dir, {
    name: 'stranger',
    cn: TEST_CLIENT_NAME,
    ca: 'stranger-ca',
    ext: ['extendedKeyUsage=clientAuth'],
  });
  const read = (f: string): Promise<string> => readFile(path.join(dir, f), 'utf8');
  return {
    dir,
    caPem: await read('ca.crt'),
    caFile: path.join(dir, 'ca.crt'),
    serverCertPem: await read('server.crt'),
    serverKeyPem: await read('server.key'),
    serverCertFile: path.join(dir, 'server.crt'),
    serverKeyFile: path.join(dir, 'server.key'),
    clientCertPem: await read('client.crt'),
    clientKeyPem: await read('client.key'),
    strangerCertPem: await read('stranger.crt'),
    strangerKeyPem: await read('stranger.key'),
    tokenKeys: await generateTokenKeys(),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
