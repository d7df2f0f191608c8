// SPDX-License-Identifier: Apache-2.0
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  certificateExpiry,
  isIssuedBy,
  issueCertificate,
  keyMatchesCertificate,
  type KeyAndCert,
} from './x509.js';

const run = promisify(execFile);
const DAY = 86_400_000;

let dir: string;
let ca: KeyAndCert;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'x509-'));
  ca = issueCertificate({ commonName: 'test-signer', usage: 'ca', validForMs: 30 * DAY });
  await writeFile(path.join(dir, 'ca.crt'), ca.certPem);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** The subjectAltName extension as `openssl x509 -text` prints it. */
async function opensslSan(certPem: string): Promise<string> {
  const file = path.join(dir, `san-${Math.random().toString(36).slice(2)}.crt`);
  await writeFile(file, certPem);
  return sanLine(file);
}

async function sanLine(file: string): Promise<string> {
  const { stdout } = await run('openssl', ['x509', '-noout', '-text', '-in', file]);
  const lines = stdout.split('\n');
  const at = lines.findIndex((l) => l.includes('X509v3 Subject Alternative Name'));
  return (lines[at + 1] ?? '').trim();
}

/** The same line for a certificate openssl made itself with `-addext subjectAltName=SAN`. */
async function opensslReferenceSan(san: string): Promise<string> {
  const base = path.join(dir, `ref-${Math.random().toString(36).slice(2)}`);
  await run('openssl', [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-subj', '/CN=ref', '-days', '1', '-addext', `subjectAltName=${san}`],
    ...['-keyout', `${base}.key`, '-out', `${base}.crt`],
  ]);
  return sanLine(`${base}.crt`);
}

/** `openssl verify` exit status and output for a leaf under `ca`. */
async function opensslVerify(leaf: string, purpose: string, caPem = ca.certPem) {
  const leafFile = path.join(dir, `leaf-${purpose}.crt`);
  const caFile = path.join(dir, `ca-${purpose}.crt`);
  await writeFile(leafFile, leaf);
  await writeFile(caFile, caPem);
  return run('openssl', ['verify', '-purpose', purpose, '-CAfile', caFile, leafFile]).then(
    (r) => ({ ok: true, out: r.stdout }),
    (err: { stdout?: string; stderr?: string }) => ({
      ok: false,
      out: `${err.stdout ?? ''}${err.stderr ?? ''}`,
    }),
  );
}

describe('issueCertificate', () => {
  it('makes a self-signed CA that openssl accepts as a CA', async () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=test-signer');
    expect(cert.checkIssued(cert)).toBe(true);
    const { stdout } = await run('openssl', [
      'x509',
      '-noout',
      '-text',
      '-in',
      path.join(dir, 'ca.crt'),
    ]);
    expect(stdout).toContain('CA:TRUE');
    expect(stdout).toContain('Certificate Sign, CRL Sign');
    expect(keyMatchesCertificate(ca)).toBe(true);
  });

  it.each([
    { what: 'server cert for server auth', usage: 'server', purpose: 'sslserver', ok: true },
    { what: 'client cert for client auth', usage: 'client', purpose: 'sslclient', ok: true },
    {
      what: 'client cert refused for server auth',
      usage: 'client',
      purpose: 'sslserver',
      ok: false,
    },
    {
      what: 'server cert refused for client auth',
      usage: 'server',
      purpose: 'sslclient',
      ok: false,
    },
  ] as const)('$what', async ({ usage, purpose, ok }) => {
    const leaf = issueCertificate({
      commonName: `leaf-${usage}`,
      usage,
      dnsNames: ['svc.ns.svc'],
      validForMs: DAY,
      issuer: ca,
    });
    const verdict = await opensslVerify(leaf.certPem, purpose);
    expect(verdict.ok, verdict.out).toBe(ok);
    expect(new X509Certificate(leaf.certPem).checkIssued(new X509Certificate(ca.certPem))).toBe(
      true,
    );
  });

  it('issues a certificate for both server and client auth when asked', async () => {
    const both = issueCertificate({
      commonName: 'front-proxy-client',
      usage: 'server',
      alsoClient: true,
      validForMs: DAY,
      issuer: ca,
    });
    expect((await opensslVerify(both.certPem, 'sslserver')).ok).toBe(true);
    expect((await opensslVerify(both.certPem, 'sslclient')).ok).toBe(true);
  });

  it('is refused under another CA', async () => {
    const other = issueCertificate({ commonName: 'other', usage: 'ca', validForMs: DAY });
    const leaf = issueCertificate({
      commonName: 'x',
      usage: 'server',
      validForMs: DAY,
      issuer: ca,
    });
    expect((await opensslVerify(leaf.certPem, 'sslserver', other.certPem)).ok).toBe(false);
    expect(isIssuedBy(leaf.certPem, other.certPem)).toBe(false);
    expect(isIssuedBy(leaf.certPem, ca.certPem)).toBe(true);
    // Same subject name, different key: the signature check must catch it.
    const impostor = issueCertificate({ commonName: 'test-signer', usage: 'ca', validForMs: DAY });
    expect(isIssuedBy(leaf.certPem, impostor.certPem)).toBe(false);
  });

  it('writes DNS and IP subject alternative names', () => {
    const leaf = issueCertificate({
      commonName: 'cdi-upload-disk',
      usage: 'server',
      dnsNames: ['cdi-upload-disk', 'cdi-upload-disk.ns.svc'],
      ipAddresses: ['127.0.0.1', '::1', 'fd00:1::2'],
      validForMs: DAY,
      issuer: ca,
    });
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.subjectAltName).toBe(
      'DNS:cdi-upload-disk, DNS:cdi-upload-disk.ns.svc, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:FD00:1:0:0:0:0:0:2',
    );
    expect(cert.checkHost('cdi-upload-disk.ns.svc')).toBe('cdi-upload-disk.ns.svc');
    expect(cert.checkHost('other.ns.svc')).toBeUndefined();
    expect(cert.issuer).toBe('CN=test-signer');
  });

  it.each([
    { what: 'an IPv4-mapped IPv6 address', ip: '::ffff:10.0.0.1' },
    { what: 'an IPv6 address ending in dotted IPv4', ip: '64:ff9b::192.0.2.33' },
    { what: 'a full IPv6 address', ip: '2001:db8:1:2:3:4:5:6' },
    { what: 'the IPv6 loopback', ip: '::1' },
    { what: 'an IPv4 address', ip: '10.0.0.1' },
  ])('writes $what as openssl does', async ({ ip }) => {
    const ours = issueCertificate({
      commonName: 'san',
      usage: 'server',
      ipAddresses: [ip],
      validForMs: DAY,
      issuer: ca,
    });
    expect(await opensslSan(ours.certPem)).toBe(await opensslReferenceSan(`IP:${ip}`));
  });

  it.each([
    { what: 'a German IDN', name: 'bücher.example', ascii: 'xn--bcher-kva.example' },
    { what: 'a Japanese IDN', name: '例え.テスト', ascii: 'xn--r8jz45g.xn--zckzah' },
    { what: 'upper case', name: 'CDI-Upload.NS.svc', ascii: 'cdi-upload.ns.svc' },
    { what: 'a wildcard', name: '*.ns.svc', ascii: '*.ns.svc' },
  ])('writes $what as its IDNA A-label', async ({ name, ascii }) => {
    const ours = issueCertificate({
      commonName: 'san',
      usage: 'server',
      dnsNames: [name],
      validForMs: DAY,
      issuer: ca,
    });
    expect(await opensslSan(ours.certPem)).toBe(await opensslReferenceSan(`DNS:${ascii}`));
  });

  it.each([
    { what: 'an IPv6 zone', req: { ipAddresses: ['fe80::1%eth0'] }, text: /zone/ },
    { what: 'not an IP address', req: { ipAddresses: ['10.0.0'] }, text: /not an IP address/ },
    { what: 'a DNS name with a space', req: { dnsNames: ['bad host'] }, text: /not a DNS name/ },
  ])('refuses $what', ({ req, text }) => {
    expect(() =>
      issueCertificate({ commonName: 'san', usage: 'server', validForMs: DAY, issuer: ca, ...req }),
    ).toThrow(text);
  });

  it.each([
    { what: 'a day (UTCTime)', validForMs: DAY, year: new Date(Date.now() + DAY).getUTCFullYear() },
    { what: 'past 2050 (GeneralizedTime)', validForMs: 40 * 365 * DAY, year: undefined },
  ])('sets validity for $what', ({ validForMs, year }) => {
    const now = new Date('2026-11-22T00:00:00Z');
    const leaf = issueCertificate({
      commonName: 'v',
      usage: 'server',
      validForMs,
      issuer: ca,
      now,
    });
    const expiry = certificateExpiry(leaf.certPem);
    expect(expiry?.getTime()).toBe(Math.floor((now.getTime() + validForMs) / 1000) * 1000);
    if (year !== undefined) expect(expiry?.getUTCFullYear()).toBeGreaterThanOrEqual(2026);
    else expect(expiry?.getUTCFullYear()).toBeGreaterThan(2050);
    const notBefore = new Date(new X509Certificate(leaf.certPem).validFrom);
    expect(notBefore.getTime()).toBe(now.getTime() - 5 * 60_000);
  });

  it('detects a key that does not belong to the certificate', () => {
    const a = issueCertificate({ commonName: 'a', usage: 'server', validForMs: DAY, issuer: ca });
    const b = issueCertificate({ commonName: 'b', usage: 'server', validForMs: DAY, issuer: ca });
    expect(keyMatchesCertificate({ keyPem: a.keyPem, certPem: b.certPem })).toBe(false);
    expect(keyMatchesCertificate({ keyPem: 'junk', certPem: b.certPem })).toBe(false);
    expect(certificateExpiry('junk')).toBeUndefined();
  });

  it('carries a real mTLS handshake: server name checked, client CN read', async () => {
    const clientCa = issueCertificate({
      commonName: 'client-signer',
      usage: 'ca',
      validForMs: DAY,
    });
    const server = issueCertificate({
      commonName: 'cdi-upload-disk',
      usage: 'server',
      dnsNames: ['cdi-upload-disk.ns.svc'],
      validForMs: DAY,
      issuer: ca,
    });
    const client = issueCertificate({
      commonName: 'client.upload-server.cdi.kubevirt.io',
      usage: 'client',
      validForMs: DAY,
      issuer: clientCa,
    });
    const peers: string[] = [];
    const srv = createServer(
      {
        key: server.keyPem,
        cert: server.certPem,
        ca: clientCa.certPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (s: TLSSocket) => {
        peers.push(String(s.getPeerCertificate().subject.CN));
        s.end('ok');
      },
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    const talk = (servername: string) =>
      new Promise<string>((resolve, reject) => {
        const s = connect({
          host: '127.0.0.1',
          port,
          servername,
          ca: ca.certPem,
          key: client.keyPem,
          cert: client.certPem,
        });
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString()));
        s.on('end', () => resolve(text));
        s.on('error', reject);
      });
    try {
      await expect(talk('cdi-upload-disk.ns.svc')).resolves.toBe('ok');
      await expect(talk('wrong.ns.svc')).rejects.toThrow(/altnames|Hostname/);
      expect(peers).toEqual(['client.upload-server.cdi.kubevirt.io']);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});
