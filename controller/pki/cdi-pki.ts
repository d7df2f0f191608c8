// SPDX-License-Identifier: Apache-2.0
/**
 * The certificates and keys of the upload path, kept in the controller's namespace under the Go
 * CDI operator's names, so the apiserver and proxy Deployments in deploy/ mount them unchanged:
 *
 * - four signers (CAs) as `kubernetes.io/tls` Secrets, each published in a `<signer>-bundle`
 *   ConfigMap (`ca-bundle.crt`: the current CA, plus the previous one until it expires, so a
 *   rotation never breaks a peer that still trusts the old bundle);
 * - the leaf certificates they sign: the token API's and the proxy's serving certificates and the
 *   proxy's mTLS client certificate;
 * - the token signing key pair (`cdi-api-signing-key`: `id_rsa`, `id_rsa.pub`), never rotated
 *   (tokens live 5 minutes, but rotating would need both processes restarted together).
 *
 * `ensure()` creates what is missing and renews what is expiring; it runs when the controller
 * starts and on every resync. The upload server signer stays in memory to sign the per-pod
 * certificates the upload reconcile asks for (`issueUploadServerCertificate`).
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { Labels, UPLOAD_CLIENT_NAME } from '../../common/contract.js';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import {
  certificateExpiry,
  isIssuedBy,
  issueCertificate,
  keyMatchesCertificate,
  type CertificateUsage,
  type KeyAndCert,
} from '../../common/x509.js';
import type { KubeClient } from '../kube.js';
import {
  CERT_CONFIG_ANNOTATION,
  DEFAULT_LIFETIMES,
  certConfigAnnotation,
  resolveLifetimes,
  type CdiCertConfig,
  type CertLifetime,
  type PkiLifetimes,
} from '../../common/cert-config.js';

const DAY_MS = 86_400_000;
/**
 * The per-pod upload server and clone client certificates live at most this long (a pod serves
 * one transfer; a new pod gets a new one), and never longer than their class allows.
 */
export const PER_POD_CERT_MAX_LIFETIME_MS = 30 * DAY_MS;

/** The lifetime of a per-pod certificate of a class (see {@link PER_POD_CERT_MAX_LIFETIME_MS}). */
function perPod(l: CertLifetime): CertLifetime {
  if (l.lifetimeMs <= PER_POD_CERT_MAX_LIFETIME_MS) return l;
  const scale = PER_POD_CERT_MAX_LIFETIME_MS / l.lifetimeMs;
  return {
    lifetimeMs: PER_POD_CERT_MAX_LIFETIME_MS,
    renewBeforeMs: Math.round(l.renewBeforeMs * scale),
  };
}

/** The objects' names (the Go CDI operator's). */
export const PkiNames = {
  UploadServerSigner: 'cdi-uploadserver-signer',
  UploadClientSigner: 'cdi-uploadserver-client-signer',
  ApiServerSigner: 'cdi-apiserver-signer',
  UploadProxySigner: 'cdi-uploadproxy-signer',
  UploadClientCert: 'cdi-uploadserver-client-cert',
  ApiServerCert: 'cdi-apiserver-server-cert',
  UploadProxyCert: 'cdi-uploadproxy-server-cert',
  ApiSigningKey: 'cdi-api-signing-key',
  /** Suffix of a signer's bundle ConfigMap. */
  BundleSuffix: '-bundle',
  /** Key of the bundle in the ConfigMap. */
  BundleKey: 'ca-bundle.crt',
  /** The aggregated token API whose `caBundle` is kept in step with the apiserver signer. */
  TokenApiService: 'v1beta1.upload.cdi.kubevirt.io',
  /** The mutating webhooks (served by the apiserver) whose `caBundle` is kept in step too. */
  DataVolumeWebhook: 'cdi-api-datavolume-mutate',
  /** The validating webhooks (served by the apiserver), likewise. */
  ValidatingWebhooks: 'cdi-api-validate',
  /** Services the serving certificates are issued for. */
  ApiService: 'cdi-api',
  UploadProxyService: 'cdi-uploadproxy',
} as const;

/** Keys of a `kubernetes.io/tls` Secret. */
export const TLS_KEY = 'tls.key';
export const TLS_CERT = 'tls.crt';

/** The DNS names of a Service: `name`, `name.ns`, `name.ns.svc`, `name.ns.svc.cluster.local`. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

/**
 * True when a certificate must be (re)issued: unreadable, not matching its key, expiring within
 * `renewBeforeMs`, or (for leaves) not signed by the current signer. Pure.
 */
export function needsRenewal(
  pair: KeyAndCert | undefined,
  options: { readonly now: Date; readonly renewBeforeMs: number; readonly signer?: KeyAndCert },
): boolean {
  if (pair === undefined || !keyMatchesCertificate(pair)) return true;
  const expiry = certificateExpiry(pair.certPem);
  if (expiry === undefined) return true;
  if (expiry.getTime() - options.now.getTime() < options.renewBeforeMs) return true;
  return options.signer !== undefined && !isIssuedBy(pair.certPem, options.signer.certPem);
}

/**
 * True when a certificate was issued under the wanted lifetimes: its Secret's annotation says so,
 * or (a Secret written before the annotation existed) it has none and the certificate's validity
 * is the wanted lifetime, so an upgrade reissues nothing. Pure.
 */
export function issuedUnder(
  annotation: string | undefined,
  wanted: string,
  pair: KeyAndCert,
  lifetime: CertLifetime,
): boolean {
  if (annotation !== undefined) return annotation === wanted;
  try {
    const cert = new X509Certificate(pair.certPem);
    const validMs = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    return Math.abs(validMs - lifetime.lifetimeMs) <= LIFETIME_TOLERANCE_MS;
  } catch {
    return false;
  }
}

/** Validity may exceed the lifetime by the backdating of notBefore (five minutes). */
const LIFETIME_TOLERANCE_MS = 10 * 60_000;

/** The PEM certificates in a bundle, in order. */
export function bundleCertificates(bundle: string): string[] {
  return (
    bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? []
  ).map((c) => (c.endsWith('\n') ? c : `${c}\n`));
}

/**
 * The bundle to publish for a signer: its certificate first, then those of `previous` that are
 * still valid and not the same certificate (at most two kept). Pure.
 */
export function nextBundle(signerCertPem: string, previous: string | undefined, now: Date): string {
  const older = bundleCertificates(previous ?? '')
    .filter((c) => c !== signerCertPem)
    .filter((c) => (certificateExpiry(c)?.getTime() ?? 0) > now.getTime())
    .slice(0, 2);
  return [signerCertPem, ...older].join('');
}

function decoded(secret: V1Secret | undefined, key: string): string | undefined {
  const v = secret?.data?.[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

function pairOf(secret: V1Secret | undefined): KeyAndCert | undefined {
  const keyPem = decoded(secret, TLS_KEY);
  const certPem = decoded(secret, TLS_CERT);
  return keyPem === undefined || certPem === undefined ? undefined : { keyPem, certPem };
}

function encode(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
  );
}

interface LeafSpec {
  readonly secret: string;
  readonly signer: string;
  readonly commonName: string;
  readonly usage: Exclude<CertificateUsage, 'ca'>;
  readonly dnsNames: readonly string[];
}

/** Options of {@link CdiPki}. */
export interface CdiPkiOptions {
  readonly client: KubeClient;
  /** The controller's namespace, where the objects live. */
  readonly namespace: string;
  readonly log: Logger;
  /** The clock (tests). */
  readonly now?: () => Date;
}

/** See the module comment. */
export class CdiPki {
  #uploadServerSigner: KeyAndCert | undefined;
  #clientCaBundle: string | undefined;
  #uploadClientSigner: KeyAndCert | undefined;
  #serverCaBundle: string | undefined;
  #tokenPublicKey: KeyObject | undefined;
  #tokenPrivateKey: KeyObject | undefined;
  readonly #now: () => Date;
  #lifetimes: PkiLifetimes = DEFAULT_LIFETIMES;

  constructor(private readonly options: CdiPkiOptions) {
    this.#now = options.now ?? (() => new Date());
  }

  /** True once {@link ensure} succeeded: uploads can be served. */
  get ready(): boolean {
    return this.#uploadServerSigner !== undefined;
  }

  /**
   * Creates or renews every object; safe to call again at any time. `certConfig` (the CDI
   * resource's) sets the lifetimes; a certificate issued under other lifetimes is reissued.
   */
  async ensure(certConfig?: CdiCertConfig): Promise<void> {
    const ns = this.options.namespace;
    const lifetimes = resolveLifetimes(certConfig);
    this.#lifetimes = lifetimes;
    const signers = new Map<string, KeyAndCert>();
    const bundles = new Map<string, string>();
    for (const name of [
      PkiNames.UploadServerSigner,
      PkiNames.UploadClientSigner,
      PkiNames.ApiServerSigner,
      PkiNames.UploadProxySigner,
    ]) {
      const signer = await this.#ensurePair({
        secret: name,
        lifetime: lifetimes.ca,
        issue: () =>
          issueCertificate({
            commonName: name,
            usage: 'ca',
            validForMs: lifetimes.ca.lifetimeMs,
            now: this.#now(),
          }),
      });
      signers.set(name, signer);
      bundles.set(name, await this.#ensureBundle(name, signer.certPem));
    }
    const leaves: LeafSpec[] = [
      {
        secret: PkiNames.UploadClientCert,
        signer: PkiNames.UploadClientSigner,
        commonName: UPLOAD_CLIENT_NAME,
        usage: 'client',
        dnsNames: [],
      },
      {
        secret: PkiNames.ApiServerCert,
        signer: PkiNames.ApiServerSigner,
        commonName: PkiNames.ApiService,
        usage: 'server',
        dnsNames: serviceDnsNames(PkiNames.ApiService, ns),
      },
      {
        secret: PkiNames.UploadProxyCert,
        signer: PkiNames.UploadProxySigner,
        commonName: PkiNames.UploadProxyService,
        usage: 'server',
        dnsNames: serviceDnsNames(PkiNames.UploadProxyService, ns),
      },
    ];
    for (const leaf of leaves) {
      const signer = signers.get(leaf.signer);
      if (signer === undefined) continue;
      const lifetime = lifetimes[leaf.usage];
      await this.#ensurePair({
        secret: leaf.secret,
        lifetime,
        signer,
        issue: () =>
          issueCertificate({
            commonName: leaf.commonName,
            usage: leaf.usage,
            dnsNames: leaf.dnsNames,
            validForMs: lifetime.lifetimeMs,
            issuer: signer,
            now: this.#now(),
          }),
      });
    }
    await this.#ensureSigningKey();
    const apiBundle = bundles.get(PkiNames.ApiServerSigner) ?? '';
    await this.options.client.setApiServiceCaBundle(
      PkiNames.TokenApiService,
      Buffer.from(apiBundle).toString('base64'),
    );
    await this.options.client.setWebhookCaBundle(
      'Mutating',
      PkiNames.DataVolumeWebhook,
      Buffer.from(apiBundle).toString('base64'),
    );
    await this.options.client.setWebhookCaBundle(
      'Validating',
      PkiNames.ValidatingWebhooks,
      Buffer.from(apiBundle).toString('base64'),
    );
    this.#uploadServerSigner = signers.get(PkiNames.UploadServerSigner);
    this.#clientCaBundle = bundles.get(PkiNames.UploadClientSigner);
    this.#uploadClientSigner = signers.get(PkiNames.UploadClientSigner);
    this.#serverCaBundle = bundles.get(PkiNames.UploadServerSigner);
  }

  /** The public key that verifies the API server's tokens (clone tokens); undefined before {@link ensure}. */
  tokenPublicKey(): KeyObject | undefined {
    return this.#tokenPublicKey;
  }

  /** The key that signs extended clone tokens; undefined before {@link ensure}. */
  tokenPrivateKey(): KeyObject | undefined {
    return this.#tokenPrivateKey;
  }

  /**
   * A client certificate named `clientName` for a network clone's source pod, with the CA bundle
   * that verifies upload servers; the target's upload server requires exactly this name.
   */
  issueCloneClientCertificate(clientName: string): KeyAndCert & { serverCaPem: string } {
    const signer = this.#uploadClientSigner;
    const serverCaPem = this.#serverCaBundle;
    if (signer === undefined || serverCaPem === undefined)
      throw new CdiError(ErrorCodes.Internal, 'the upload certificate authority is not ready yet', {
        retryable: true,
      });
    const pair = issueCertificate({
      commonName: clientName,
      usage: 'client',
      validForMs: perPod(this.#lifetimes.client).lifetimeMs,
      issuer: signer,
      now: this.#now(),
    });
    return { ...pair, serverCaPem };
  }

  /**
   * A serving certificate for an upload server behind Service `service` in `namespace`, with the
   * client CA bundle it must require of the proxy. Throws a retryable `CDI_INTERNAL` before the
   * first successful {@link ensure}.
   */
  issueUploadServerCertificate(
    service: string,
    namespace: string,
  ): KeyAndCert & { clientCaPem: string } {
    const signer = this.#uploadServerSigner;
    const clientCaPem = this.#clientCaBundle;
    if (signer === undefined || clientCaPem === undefined)
      throw new CdiError(ErrorCodes.Internal, 'the upload certificate authority is not ready yet', {
        retryable: true,
      });
    const pair = issueCertificate({
      commonName: service,
      usage: 'server',
      dnsNames: serviceDnsNames(service, namespace),
      validForMs: perPod(this.#lifetimes.server).lifetimeMs,
      issuer: signer,
      now: this.#now(),
    });
    return { ...pair, clientCaPem };
  }

  /** True when an upload server's Secret still holds a good certificate from the current CA. */
  uploadServerSecretIsCurrent(secret: V1Secret | undefined): boolean {
    const signer = this.#uploadServerSigner;
    if (signer === undefined || secret === undefined) return false;
    if (decoded(secret, 'ca.crt') !== this.#clientCaBundle) return false;
    return !needsRenewal(pairOf(secret), {
      now: this.#now(),
      renewBeforeMs: perPod(this.#lifetimes.server).renewBeforeMs,
      signer,
    });
  }

  /** The Secret's pair was issued under the wanted lifetimes and needs no renewal. */
  #isCurrent(
    existing: V1Secret | undefined,
    current: KeyAndCert,
    wanted: string,
    spec: { readonly lifetime: CertLifetime; readonly signer?: KeyAndCert },
  ): boolean {
    const annotation = existing?.metadata?.annotations?.[CERT_CONFIG_ANNOTATION];
    if (!issuedUnder(annotation, wanted, current, spec.lifetime)) return false;
    return !needsRenewal(current, {
      now: this.#now(),
      renewBeforeMs: spec.lifetime.renewBeforeMs,
      ...(spec.signer === undefined ? {} : { signer: spec.signer }),
    });
  }

  async #ensurePair(spec: {
    readonly secret: string;
    readonly lifetime: CertLifetime;
    readonly signer?: KeyAndCert;
    readonly issue: () => KeyAndCert;
  }): Promise<KeyAndCert> {
    const { client, namespace, log } = this.options;
    const existing = await client.getSecret(namespace, spec.secret);
    const current = pairOf(existing);
    const wanted = certConfigAnnotation(spec.lifetime);
    if (current !== undefined && this.#isCurrent(existing, current, wanted, spec)) return current;
    const pair = spec.issue();
    const secret: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: {
        name: spec.secret,
        namespace,
        labels: { [Labels.App]: Labels.AppValue },
        annotations: { [CERT_CONFIG_ANNOTATION]: wanted },
        ...(existing === undefined
          ? {}
          : { resourceVersion: existing.metadata?.resourceVersion ?? '' }),
      },
      data: encode({ [TLS_KEY]: pair.keyPem, [TLS_CERT]: pair.certPem }),
    };
    if (existing === undefined) {
      if (!(await client.createSecret(secret))) {
        // Another writer won the race: use what it wrote.
        const theirs = pairOf(await client.getSecret(namespace, spec.secret));
        if (theirs !== undefined) return theirs;
      }
    } else await client.replaceSecret(secret);
    log.info(existing === undefined ? 'created certificate' : 'renewed certificate', {
      secret: `${namespace}/${spec.secret}`,
      expires: certificateExpiry(pair.certPem)?.toISOString(),
    });
    return pair;
  }

  async #ensureBundle(signer: string, certPem: string): Promise<string> {
    const { client, namespace } = this.options;
    const name = `${signer}${PkiNames.BundleSuffix}`;
    const existing = await client.getConfigMap(namespace, name);
    const previous = existing?.data?.[PkiNames.BundleKey];
    const bundle = nextBundle(certPem, previous, this.#now());
    if (bundle === previous) return bundle;
    const cm: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace, labels: { [Labels.App]: Labels.AppValue } },
      data: { [PkiNames.BundleKey]: bundle },
    };
    await client.applyConfigMap(cm, existing);
    return bundle;
  }

  async #ensureSigningKey(): Promise<void> {
    const { client, namespace, log } = this.options;
    const existing = await client.getSecret(namespace, PkiNames.ApiSigningKey);
    const publicPem = decoded(existing, 'id_rsa.pub');
    const privatePem = decoded(existing, 'id_rsa');
    if (privatePem !== undefined && publicPem !== undefined) {
      this.#tokenPublicKey = createPublicKey(publicPem);
      this.#tokenPrivateKey = createPrivateKey(privatePem);
      return;
    }
    // RSA because the token format is CDI's: PS256 JWTs.
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const secret: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name: PkiNames.ApiSigningKey,
        namespace,
        labels: { [Labels.App]: Labels.AppValue },
        ...(existing === undefined
          ? {}
          : { resourceVersion: existing.metadata?.resourceVersion ?? '' }),
      },
      data: encode({
        id_rsa: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        'id_rsa.pub': publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      }),
    };
    if (existing === undefined) await client.createSecret(secret);
    else await client.replaceSecret(secret);
    this.#tokenPublicKey = publicKey;
    this.#tokenPrivateKey = privateKey;
    log.info('created the token signing key', { secret: `${namespace}/${PkiNames.ApiSigningKey}` });
  }
}
