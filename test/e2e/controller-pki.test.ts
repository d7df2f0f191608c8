// SPDX-License-Identifier: Apache-2.0
/**
 * The controller's PKI of the upload path against the sandbox API: every object created under
 * the Go CDI operator's names, left alone when current, renewed when expiring or broken, with the
 * old CA kept in the bundle through a rotation; certificates checked with openssl.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  ApiregistrationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Secret,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { isIssuedBy, keyMatchesCertificate } from '../../common/x509.js';
import { KubeClient } from '../../controller/kube.js';
import { CdiPki, PkiNames, bundleCertificates } from '../../controller/pki/cdi-pki.js';
import {
  loadPrivateKey,
  parsePublicKey,
  signUploadToken,
  verifyUploadToken,
} from '../../uploadproxy/protocol/token.js';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubeConfigFor, kubectl } from '../sandbox/testing.js';

const run = promisify(execFile);
const NS = 'cdi-pki';
const DAY = 86_400_000;
const HOUR = 3_600_000;

let sandbox: Sandbox;
let kc: KubeConfig;
let core: CoreV1Api;
let dir: string;
let clock = new Date();

function pkiAt(): CdiPki {
  return new CdiPki({
    client: new KubeClient(kc),
    namespace: NS,
    log: silentLogger,
    now: () => clock,
  });
}

function text(secret: V1Secret, key: string): string {
  return Buffer.from(secret.data?.[key] ?? '', 'base64').toString('utf8');
}

async function secret(name: string): Promise<V1Secret> {
  return core.readNamespacedSecret({ namespace: NS, name });
}

async function bundle(signer: string): Promise<string> {
  const cm = await core.readNamespacedConfigMap({
    namespace: NS,
    name: `${signer}${PkiNames.BundleSuffix}`,
  });
  return cm.data?.[PkiNames.BundleKey] ?? '';
}

async function opensslVerify(certPem: string, caBundle: string, purpose: string): Promise<void> {
  const cert = path.join(dir, 'leaf.pem');
  const ca = path.join(dir, 'ca.pem');
  await writeFile(cert, certPem);
  await writeFile(ca, caBundle);
  await run('openssl', ['verify', '-purpose', purpose, '-CAfile', ca, cert]);
}

async function versions(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const s of (await core.listNamespacedSecret({ namespace: NS })).items)
    out[`secret/${s.metadata?.name ?? ''}`] = s.metadata?.resourceVersion ?? '';
  for (const c of (await core.listNamespacedConfigMap({ namespace: NS })).items)
    out[`cm/${c.metadata?.name ?? ''}`] = c.metadata?.resourceVersion ?? '';
  return out;
}

beforeAll(async () => {
  sandbox = await startSandbox();
  kc = kubeConfigFor(sandbox);
  core = kc.makeApiClient(CoreV1Api);
  dir = await mkdtemp(path.join(tmpdir(), 'pki-e2e-'));
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await kc.makeApiClient(ApiregistrationV1Api).createAPIService({
    body: {
      apiVersion: 'apiregistration.k8s.io/v1',
      kind: 'APIService',
      metadata: { name: PkiNames.TokenApiService },
      spec: {
        group: 'upload.cdi.kubevirt.io',
        version: 'v1beta1',
        groupPriorityMinimum: 1000,
        versionPriority: 15,
        service: { namespace: NS, name: 'cdi-api', port: 443 },
      },
    },
  });
  // The admission webhooks of deploy/, whose caBundle the PKI keeps too.
  const applied = await kubectl(sandbox, ['apply', '-f', 'deploy/apiserver/webhook.yaml']);
  expect(applied.code, applied.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  await sandbox.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('CdiPki', () => {
  it('creates every object, each certificate valid for its use', async () => {
    await pkiAt().ensure();
    const signers = [
      PkiNames.UploadServerSigner,
      PkiNames.UploadClientSigner,
      PkiNames.ApiServerSigner,
      PkiNames.UploadProxySigner,
    ];
    for (const name of signers) {
      const s = await secret(name);
      expect(s.type).toBe('kubernetes.io/tls');
      expect(new X509Certificate(text(s, 'tls.crt')).ca).toBe(true);
      expect(bundleCertificates(await bundle(name))).toEqual([text(s, 'tls.crt')]);
    }
    const leaves = [
      {
        name: PkiNames.UploadClientCert,
        signer: PkiNames.UploadClientSigner,
        purpose: 'sslclient',
      },
      { name: PkiNames.ApiServerCert, signer: PkiNames.ApiServerSigner, purpose: 'sslserver' },
      { name: PkiNames.UploadProxyCert, signer: PkiNames.UploadProxySigner, purpose: 'sslserver' },
    ];
    for (const leaf of leaves) {
      const cert = text(await secret(leaf.name), 'tls.crt');
      await opensslVerify(cert, await bundle(leaf.signer), leaf.purpose);
    }
    const client = new X509Certificate(text(await secret(PkiNames.UploadClientCert), 'tls.crt'));
    expect(client.subject).toBe('CN=client.upload-server.cdi.kubevirt.io');
    const api = new X509Certificate(text(await secret(PkiNames.ApiServerCert), 'tls.crt'));
    expect(api.checkHost(`cdi-api.${NS}.svc`)).toBe(`cdi-api.${NS}.svc`);
    const proxy = new X509Certificate(text(await secret(PkiNames.UploadProxyCert), 'tls.crt'));
    expect(proxy.checkHost(`cdi-uploadproxy.${NS}.svc`)).toBe(`cdi-uploadproxy.${NS}.svc`);
  });

  it('keeps a token signing key whose halves sign and verify upload tokens', async () => {
    const key = await secret(PkiNames.ApiSigningKey);
    // The files `cdi apiserver --token-key-file` and `cdi uploadproxy --token-public-key-file` read.
    const keyFile = path.join(dir, 'id_rsa');
    await writeFile(keyFile, text(key, 'id_rsa'));
    const token = await signUploadToken(await loadPrivateKey(keyFile), {
      namespace: 'ns',
      pvc: 'disk',
    });
    const target = await verifyUploadToken(await parsePublicKey(text(key, 'id_rsa.pub')), token);
    expect(target).toMatchObject({ namespace: 'ns', pvc: 'disk' });
  });

  it("sets the token APIService's caBundle to the apiserver signer's bundle", async () => {
    const svc = await kc
      .makeApiClient(ApiregistrationV1Api)
      .readAPIService({ name: PkiNames.TokenApiService });
    expect(Buffer.from(svc.spec?.caBundle ?? '', 'base64').toString()).toBe(
      await bundle(PkiNames.ApiServerSigner),
    );
  });

  it.each([
    { kind: 'mutatingwebhookconfiguration', name: PkiNames.DataVolumeWebhook },
    { kind: 'validatingwebhookconfiguration', name: PkiNames.ValidatingWebhooks },
  ])(
    "sets the caBundle of every webhook in $kind $name to the apiserver signer's bundle",
    async ({ kind, name }) => {
      const r = await kubectl(sandbox, ['get', kind, name, '-o', 'json']);
      expect(r.code, r.stderr).toBe(0);
      const hooks = (
        JSON.parse(r.stdout) as { webhooks: { clientConfig: { caBundle?: string } }[] }
      ).webhooks;
      expect(hooks.length).toBeGreaterThan(0);
      for (const hook of hooks)
        expect(Buffer.from(hook.clientConfig.caBundle ?? '', 'base64').toString()).toBe(
          await bundle(PkiNames.ApiServerSigner),
        );
    },
  );

  it('changes nothing when everything is current', async () => {
    const before = await versions();
    await pkiAt().ensure();
    expect(await versions()).toEqual(before);
  });

  it('reissues a leaf whose key no longer matches its certificate', async () => {
    const s = await secret(PkiNames.UploadProxyCert);
    const other = await secret(PkiNames.ApiServerCert);
    await core.replaceNamespacedSecret({
      namespace: NS,
      name: PkiNames.UploadProxyCert,
      body: { ...s, data: { ...s.data, 'tls.key': other.data?.['tls.key'] ?? '' } },
    });
    await pkiAt().ensure();
    const fixed = await secret(PkiNames.UploadProxyCert);
    expect(
      keyMatchesCertificate({ keyPem: text(fixed, 'tls.key'), certPem: text(fixed, 'tls.crt') }),
    ).toBe(true);
  });

  it('rotates expiring signers, keeps the old CA in the bundle, and reissues their leaves', async () => {
    const oldCa = text(await secret(PkiNames.UploadClientSigner), 'tls.crt');
    clock = new Date(Date.now() + 300 * DAY);
    try {
      await pkiAt().ensure();
      const newCa = text(await secret(PkiNames.UploadClientSigner), 'tls.crt');
      expect(newCa).not.toBe(oldCa);
      expect(bundleCertificates(await bundle(PkiNames.UploadClientSigner))).toEqual([newCa, oldCa]);
      const leaf = text(await secret(PkiNames.UploadClientCert), 'tls.crt');
      expect(isIssuedBy(leaf, newCa)).toBe(true);
    } finally {
      clock = new Date();
    }
  });

  it("sets the certificates' lifetimes from the CDI resource's certConfig, and back", async () => {
    const validity = async (name: string): Promise<number> => {
      const c = new X509Certificate(text(await secret(name), 'tls.crt'));
      return (Date.parse(c.validTo) - Date.parse(c.validFrom)) / 60_000;
    };
    const names = [
      PkiNames.ApiServerSigner,
      PkiNames.UploadProxySigner,
      PkiNames.ApiServerCert,
      PkiNames.UploadProxyCert,
      PkiNames.UploadClientCert,
    ];
    const all = (): Promise<number[]> => Promise.all(names.map(validity));
    // Minutes of validity: issueCertificate backdates notBefore by five.
    const minutes = (hours: number[]): number[] => hours.map((h) => h * 60 + 5);
    const certConfig = {
      ca: { duration: '48h', renewBefore: '24h' },
      server: { duration: '24h', renewBefore: '12h' },
      client: { duration: '12h', renewBefore: '6h' },
    };
    await pkiAt().ensure(certConfig);
    expect(await all()).toEqual(minutes([48, 48, 24, 24, 12]));
    expect((await secret(PkiNames.ApiServerCert)).metadata?.annotations).toMatchObject({
      'operator.cdi.kubevirt.io/certConfig': '{"lifetime":"24h0m0s","refresh":"12h0m0s"}',
    });
    await opensslVerify(
      text(await secret(PkiNames.ApiServerCert), 'tls.crt'),
      await bundle(PkiNames.ApiServerSigner),
      'sslserver',
    );
    const before = await versions();
    await pkiAt().ensure(certConfig);
    expect(await versions()).toEqual(before);
    // Renewed once less than renewBefore is left: 13 h on, the 24 h server certificate is.
    clock = new Date(Date.now() + 13 * HOUR);
    try {
      const server = text(await secret(PkiNames.ApiServerCert), 'tls.crt');
      const ca = text(await secret(PkiNames.ApiServerSigner), 'tls.crt');
      await pkiAt().ensure(certConfig);
      expect(text(await secret(PkiNames.ApiServerCert), 'tls.crt')).not.toBe(server);
      expect(text(await secret(PkiNames.ApiServerSigner), 'tls.crt')).toBe(ca);
    } finally {
      clock = new Date();
    }
    await pkiAt().ensure();
    expect(await all()).toEqual(minutes([365 * 24, 365 * 24, 90 * 24, 90 * 24, 90 * 24]));
  });

  it('issues upload server certificates for the Service name, with the client CA bundle', async () => {
    const pki = pkiAt();
    expect(() => pki.issueUploadServerCertificate('cdi-upload-disk', 'ns')).toThrow(/not ready/);
    await pki.ensure();
    const issued = pki.issueUploadServerCertificate('cdi-upload-disk', 'ns');
    const cert = new X509Certificate(issued.certPem);
    expect(cert.checkHost('cdi-upload-disk.ns.svc')).toBe('cdi-upload-disk.ns.svc');
    await opensslVerify(issued.certPem, await bundle(PkiNames.UploadServerSigner), 'sslserver');
    expect(issued.clientCaPem).toBe(await bundle(PkiNames.UploadClientSigner));
    const asSecret: V1Secret = {
      data: {
        'tls.key': Buffer.from(issued.keyPem).toString('base64'),
        'tls.crt': Buffer.from(issued.certPem).toString('base64'),
        'ca.crt': Buffer.from(issued.clientCaPem).toString('base64'),
      },
    };
    expect(pki.uploadServerSecretIsCurrent(asSecret)).toBe(true);
    expect(
      pki.uploadServerSecretIsCurrent({ data: { ...asSecret.data, 'ca.crt': 'c3RhbGU=' } }),
    ).toBe(false);
    expect(pki.uploadServerSecretIsCurrent(undefined)).toBe(false);
  });
});
