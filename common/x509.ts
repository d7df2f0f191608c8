// SPDX-License-Identifier: Apache-2.0
/**
 * A small X.509 issuer on node:crypto, for the certificates CDI manages itself (the upload path's
 * CAs, the per-pod upload server certificates, the proxy's client certificate). node:crypto reads
 * certificates but cannot write them, and shelling out to `openssl` per upload would put a binary
 * in the controller image for ~150 lines of DER. Keys are ECDSA P-256, signatures
 * ecdsa-with-SHA256; subjects carry a common name only. See ADR 0010.
 */
import {
  X509Certificate,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { CdiError, ErrorCodes } from './errors.js';

/** A private key and its certificate, both PEM. */
export interface KeyAndCert {
  readonly keyPem: string;
  readonly certPem: string;
}

/** What a certificate is for: a CA, a TLS server, or a TLS client. */
export type CertificateUsage = 'ca' | 'server' | 'client';

/** What to issue. */
export interface CertificateRequest {
  readonly commonName: string;
  readonly usage: CertificateUsage;
  /** A server certificate that may also authenticate as a client (both extended key usages). */
  readonly alsoClient?: boolean;
  /** Subject alternative names: DNS names and IP addresses. */
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly validForMs: number;
  /** The signing CA; a self-signed certificate when absent. */
  readonly issuer?: KeyAndCert;
  /** The issue time (tests); now by default. */
  readonly now?: Date;
}

/** Validity starts this much before now, so a peer whose clock is a little behind accepts it. */
const BACKDATE_MS = 5 * 60_000;

// ---- DER writing ------------------------------------------------------------------------------

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bits = (b: Buffer, unused = 0): Buffer =>
  tlv(0x03, Buffer.concat([Buffer.from([unused]), b]));
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));

function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [40 * (arcs[0] ?? 0) + (arcs[1] ?? 0)];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128))
      chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** A positive INTEGER from unsigned big-endian bytes. */
function unsignedInteger(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const trimmed = b.subarray(i);
  return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-11-22T02:30:00.000Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii'))
    : tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'));
}

function nameWithCommonName(cn: string): Buffer {
  return seq(set(seq(oid('2.5.4.3'), utf8(cn))));
}

/** A KeyUsage BIT STRING: DER drops trailing zero bits and counts them as unused. */
function keyUsage(mask: number): Buffer {
  let unused = 0;
  while (unused < 7 && ((mask >> unused) & 1) === 0) unused++;
  return bits(Buffer.from([mask]), unused);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

/**
 * The 4 or 16 bytes of an IP address SAN. An IPv6 address may end in dotted IPv4
 * (`::ffff:10.0.0.1`, RFC 4291 2.2): those are its last two groups. A zone (`fe80::1%eth0`)
 * names a local interface, which a certificate cannot carry: refused, not dropped.
 */
export function ipAddressBytes(ip: string): Buffer {
  if (ip.includes('%'))
    throw new CdiError(
      ErrorCodes.InvalidArgument,
      `IP address ${ip}: a zone (%...) cannot be put in a certificate`,
    );
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  if (family !== 6) throw new CdiError(ErrorCodes.InvalidArgument, `not an IP address: ${ip}`);
  const cut = ip.lastIndexOf(':') + 1;
  const last = ip.slice(cut);
  const hex = last.includes('.')
    ? `${ip.slice(0, cut)}${ipv4Groups(Buffer.from(last.split('.').map(Number)))}`
    : ip;
  const [head = '', tail = ''] = hex.split('::');
  const parts = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = parts(head);
  const t = hex.includes('::') ? parts(tail) : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

/** Four IPv4 bytes as two IPv6 groups (`10.0.0.1` → `a00:1`). */
function ipv4Groups(b: Buffer): string {
  return `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
}

/**
 * A DNS name SAN: IA5String, so an internationalised name goes in as its IDNA (punycode) A-label,
 * `bücher.example` → `xn--bcher-kva.example`, as browsers and Go's x509 match it. A name that has
 * none is refused.
 */
export function dnsNameBytes(name: string): Buffer {
  const ascii = domainToASCII(name);
  if (ascii === '' || !/^[\x21-\x7e]+$/.test(ascii))
    throw new CdiError(ErrorCodes.InvalidArgument, `not a DNS name: ${JSON.stringify(name)}`);
  return Buffer.from(ascii, 'ascii');
}

// ---- DER reading (just enough to take the issuer's subject name) ------------------------------

interface Element {
  readonly tag: number;
  /** The whole element, header included. */
  readonly raw: Buffer;
  readonly content: Buffer;
}

function readElement(b: Buffer, at: number): Element {
  const tag = b[at] ?? 0;
  let len = b[at + 1] ?? 0;
  let header = 2;
  if (len & 0x80) {
    const count = len & 0x7f;
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + (b[at + 2 + i] ?? 0);
    header += count;
  }
  return {
    tag,
    raw: b.subarray(at, at + header + len),
    content: b.subarray(at + header, at + header + len),
  };
}

function children(content: Buffer): Element[] {
  const out: Element[] = [];
  for (let at = 0; at < content.length;) {
    const e = readElement(content, at);
    out.push(e);
    at += e.raw.length;
  }
  return out;
}

/** The DER subject Name of a certificate. */
function subjectOf(certDer: Buffer): Buffer {
  const tbs = children(readElement(certDer, 0).content)[0];
  const fields = children(tbs?.content ?? Buffer.alloc(0));
  // version [0] is present in v3 certificates: serial, signature, issuer, validity, subject follow.
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[offset + 4];
  if (subject === undefined)
    throw new CdiError(ErrorCodes.InvalidArgument, 'malformed issuer certificate');
  return subject.raw;
}

// ---- issuing ----------------------------------------------------------------------------------

function keyId(publicKey: KeyObject): Buffer {
  return createHash('sha1')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest();
}

const ECDSA_WITH_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const KEY_USAGE = {
  digitalSignature: 0x80,
  keyEncipherment: 0x20,
  keyCertSign: 0x04,
  cRLSign: 0x02,
};
const EXT_KEY_USAGE = { server: '1.3.6.1.5.5.7.3.1', client: '1.3.6.1.5.5.7.3.2' } as const;

function extensions(req: CertificateRequest, subjectKey: KeyObject, issuerKey: KeyObject): Buffer {
  const list: Buffer[] = [];
  if (req.usage === 'ca') {
    list.push(extension('2.5.29.19', true, seq(bool(true))));
    list.push(
      extension(
        '2.5.29.15',
        true,
        keyUsage(KEY_USAGE.digitalSignature | KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign),
      ),
    );
  } else {
    list.push(extension('2.5.29.19', true, seq()));
    list.push(
      extension(
        '2.5.29.15',
        true,
        keyUsage(KEY_USAGE.digitalSignature | KEY_USAGE.keyEncipherment),
      ),
    );
    const usages =
      req.usage === 'server' && req.alsoClient === true
        ? [EXT_KEY_USAGE.server, EXT_KEY_USAGE.client]
        : [EXT_KEY_USAGE[req.usage]];
    list.push(extension('2.5.29.37', false, seq(...usages.map(oid))));
  }
  const names = [
    ...(req.dnsNames ?? []).map((n) => tlv(0x82, dnsNameBytes(n))),
    ...(req.ipAddresses ?? []).map((ip) => tlv(0x87, ipAddressBytes(ip))),
  ];
  if (names.length > 0) list.push(extension('2.5.29.17', false, seq(...names)));
  list.push(extension('2.5.29.14', false, octets(keyId(subjectKey))));
  list.push(extension('2.5.29.35', false, seq(tlv(0x80, keyId(issuerKey)))));
  return tlv(0xa3, seq(...list));
}

/** Issues a certificate with a fresh P-256 key (see {@link CertificateRequest}). */
export function issueCertificate(req: CertificateRequest): KeyAndCert {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = req.now ?? new Date();
  const issuerKey = req.issuer === undefined ? privateKey : createPrivateKey(req.issuer.keyPem);
  const issuerPublic = createPublicKey(issuerKey);
  const issuerName =
    req.issuer === undefined
      ? nameWithCommonName(req.commonName)
      : subjectOf(new X509Certificate(req.issuer.certPem).raw);
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // v3
    unsignedInteger(serial),
    ECDSA_WITH_SHA256,
    issuerName,
    seq(
      time(new Date(now.getTime() - BACKDATE_MS)),
      time(new Date(now.getTime() + req.validForMs)),
    ),
    nameWithCommonName(req.commonName),
    publicKey.export({ type: 'spki', format: 'der' }),
    extensions(req, publicKey, issuerPublic),
  );
  const signature = sign('sha256', tbs, issuerKey);
  const der = seq(tbs, ECDSA_WITH_SHA256, bits(signature));
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPem: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`,
  };
}

/** When a PEM certificate expires; undefined when the text is not a certificate. */
export function certificateExpiry(certPem: string): Date | undefined {
  try {
    return new Date(new X509Certificate(certPem).validTo);
  } catch {
    return undefined;
  }
}

/** True when `certPem` was signed by the CA certificate `caPem` (name and signature checked). */
export function isIssuedBy(certPem: string, caPem: string): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** True when the PEM key and certificate belong together (a Secret someone edited by hand). */
export function keyMatchesCertificate(pair: KeyAndCert): boolean {
  try {
    return new X509Certificate(pair.certPem).checkPrivateKey(createPrivateKey(pair.keyPem));
  } catch {
    return false;
  }
}
