// SPDX-License-Identifier: Apache-2.0
/**
 * A stand-in for the controller's upload PKI bootstrap, for tests that run the upload path
 * without the controller: the same Secrets and ConfigMaps in `cdi` (see upload-wiring.ts), made
 * with `openssl` (EC keys for TLS, RSA 2048 for the token key), plus certificates for upload
 * server pods made by hand.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { UPLOAD_CLIENT_NAME } from '../../common/contract.js';
import { CDI_NAMESPACE } from './upload-wiring.js';

const run = promisify(execFile);

/** A Secret or ConfigMap body, ready to create. */
export interface SeedObject {
  readonly apiVersion: 'v1';
  readonly kind: 'Secret' | 'ConfigMap';
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly type?: string;
  readonly data: Record<string, string>;
}

/** PEM text of one key pair and its certificate. */
export interface CertPair {
  readonly certPem: string;
  readonly keyPem: string;
}

/** The seeded PKI. */
export interface SeededUploadPki {
  /** Every Secret and ConfigMap of the contract, in namespace `cdi`. */
  readonly objects: readonly SeedObject[];
  /** CA that signs upload servers (the proxy trusts it). */
  readonly uploadServerCaPem: string;
  /** CA that signs the proxy's client certificate (upload servers trust it). */
  readonly uploadClientCaPem: string;
  /** Issues an upload server certificate for `cdi-upload-<pvc>` in `namespace`. */
  issueUploadServerCert(namespace: string, pvc: string): Promise<CertPair>;
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  await run('openssl', [...args], { cwd: dir });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, name: string): Promise<string> {
  await openssl(dir, [
    ...['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2'],
    ...['-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE'],
    ...['-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  ]);
  return readFile(join(dir, `${name}.crt`), 'utf8');
}

let serial = 0;

async function makeLeaf(
  dir: string,
  o: { ca: string; cn: string; dns?: readonly string[]; usage: 'serverAuth' | 'clientAuth' },
): Promise<CertPair> {
  const name = `leaf-${process.pid}-${++serial}`;
  await openssl(dir, [
    ...['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${o.cn}`],
  ]);
  const ext = ['basicConstraints=CA:FALSE', `extendedKeyUsage=${o.usage}`];
  if (o.dns !== undefined) ext.push(`subjectAltName=${o.dns.map((d) => `DNS:${d}`).join(',')}`);
  await writeFile(join(dir, `${name}.ext`), `${ext.join('\n')}\n`);
  await openssl(dir, [
    ...['x509', '-req', '-in', `${name}.csr`, '-CA', `${o.ca}.crt`, '-CAkey', `${o.ca}.key`],
    ...['-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`],
  ]);
  return {
    certPem: await readFile(join(dir, `${name}.crt`), 'utf8'),
    keyPem: await readFile(join(dir, `${name}.key`), 'utf8'),
  };
}

/** `<name>`, `<name>.<ns>`, `<name>.<ns>.svc`: the names a Service's certificate carries. */
export function serviceNames(name: string, namespace: string): string[] {
  return [name, `${name}.${namespace}`, `${name}.${namespace}.svc`];
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

function tlsSecret(name: string, pair: CertPair): SeedObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: CDI_NAMESPACE },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(pair.certPem), 'tls.key': b64(pair.keyPem) },
  };
}

function bundle(name: string, caPem: string): SeedObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: CDI_NAMESPACE },
    data: { 'ca-bundle.crt': caPem },
  };
}

/** Generates the PKI in `dir` (well under a second). */
export async function seedUploadPki(dir: string): Promise<SeededUploadPki> {
  await mkdir(dir, { recursive: true });
  const [apiCa, proxyCa, serverCa, clientCa] = await Promise.all([
    makeCa(dir, 'apiserver-signer'),
    makeCa(dir, 'uploadproxy-signer'),
    makeCa(dir, 'uploadserver-signer'),
    makeCa(dir, 'uploadserver-client-signer'),
  ]);
  await openssl(dir, [
    ...['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'id_rsa'],
  ]);
  await openssl(dir, ['pkey', '-in', 'id_rsa', '-pubout', '-out', 'id_rsa.pub']);
  const apiCert = await makeLeaf(dir, {
    ca: 'apiserver-signer',
    cn: 'cdi-api',
    dns: serviceNames('cdi-api', CDI_NAMESPACE),
    usage: 'serverAuth',
  });
  const proxyCert = await makeLeaf(dir, {
    ca: 'uploadproxy-signer',
    cn: 'cdi-uploadproxy',
    dns: serviceNames('cdi-uploadproxy', CDI_NAMESPACE),
    usage: 'serverAuth',
  });
  const clientCert = await makeLeaf(dir, {
    ca: 'uploadserver-client-signer',
    cn: UPLOAD_CLIENT_NAME,
    usage: 'clientAuth',
  });
  const objects: SeedObject[] = [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'cdi-api-signing-key', namespace: CDI_NAMESPACE },
      type: 'Opaque',
      data: {
        id_rsa: b64(await readFile(join(dir, 'id_rsa'), 'utf8')),
        'id_rsa.pub': b64(await readFile(join(dir, 'id_rsa.pub'), 'utf8')),
      },
    },
    tlsSecret('cdi-apiserver-server-cert', apiCert),
    bundle('cdi-apiserver-signer-bundle', apiCa),
    tlsSecret('cdi-uploadproxy-server-cert', proxyCert),
    bundle('cdi-uploadproxy-signer-bundle', proxyCa),
    tlsSecret('cdi-uploadserver-client-cert', clientCert),
    bundle('cdi-uploadserver-signer-bundle', serverCa),
  ];
  return {
    objects,
    uploadServerCaPem: serverCa,
    uploadClientCaPem: clientCa,
    issueUploadServerCert: (namespace, pvc) =>
      makeLeaf(dir, {
        ca: 'uploadserver-signer',
        cn: `cdi-upload-${pvc}`,
        dns: serviceNames(`cdi-upload-${pvc}`, namespace),
        usage: 'serverAuth',
      }),
  };
}

/** Creates namespace `cdi` (if absent) and the seeded objects through the API at `kubeconfigPath`. */
export async function createSeedObjects(
  kubeconfigPath: string,
  objects: readonly SeedObject[],
): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  await core
    .createNamespace({ body: { metadata: { name: CDI_NAMESPACE } } })
    .catch((err: unknown) => {
      if ((err as { code?: unknown }).code !== 409) throw err;
    });
  for (const o of objects) {
    const body = { ...o, metadata: { ...o.metadata } };
    if (o.kind === 'Secret')
      await core.createNamespacedSecret({ namespace: o.metadata.namespace, body });
    else await core.createNamespacedConfigMap({ namespace: o.metadata.namespace, body });
  }
}
