// SPDX-License-Identifier: Apache-2.0
/**
 * Manifests and image configs: the four media types we accept (OCI image manifest and index,
 * Docker schema 2 manifest and manifest list), the platform choice in an index with CDI's error
 * text, and what the image config tells us (architecture, env-derived labels, bootc labels).
 * Pure functions over parsed JSON.
 */
import { CdiError, ErrorCodes } from '../../../common/errors.js';

/** Manifest media types. */
export const MediaTypes = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** The `Accept` header of manifest requests: every type we can read. */
export const MANIFEST_ACCEPT = [
  MediaTypes.OciManifest,
  MediaTypes.OciIndex,
  MediaTypes.DockerManifest,
  MediaTypes.DockerManifestList,
].join(', ');

/** An OCI content descriptor. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly platform?: Platform;
}

/** The platform of an index entry or the wanted one. */
export interface Platform {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
}

/** A parsed manifest document. */
export type ManifestDocument =
  | { readonly kind: 'index'; readonly manifests: readonly Descriptor[] }
  | {
      readonly kind: 'image';
      readonly config: Descriptor;
      readonly layers: readonly Descriptor[];
    };

/** What we use of an image config. */
export interface ImageConfig {
  readonly architecture: string | undefined;
  readonly os: string | undefined;
  readonly env: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

const DIGEST_RE = /^sha(256:[a-f0-9]{64}|512:[a-f0-9]{128})$/;

function invalidManifest(why: string): CdiError {
  return new CdiError(ErrorCodes.RegistryPullFailed, `invalid manifest: ${why}`);
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function parsePlatform(v: unknown): Platform | undefined {
  const p = asRecord(v);
  if (p === undefined) return undefined;
  const str = (k: string): string => (typeof p[k] === 'string' ? p[k] : '');
  const variant = str('variant');
  return {
    architecture: str('architecture'),
    os: str('os'),
    ...(variant === '' ? {} : { variant }),
  };
}

function parseDescriptor(v: unknown, where: string): Descriptor {
  const o = asRecord(v);
  const digest = o?.['digest'];
  const size = o?.['size'];
  const mediaType = o?.['mediaType'];
  if (typeof digest !== 'string' || !DIGEST_RE.test(digest)) {
    throw invalidManifest(`${where}: missing or malformed digest`);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalidManifest(`${where}: missing or malformed size`);
  }
  const platform = parsePlatform(o?.['platform']);
  return {
    mediaType: typeof mediaType === 'string' ? mediaType : '',
    digest,
    size,
    ...(platform === undefined ? {} : { platform }),
  };
}

/**
 * Parses manifest bytes. The document's own `mediaType` wins over the response Content-Type;
 * a document with `manifests` is an index, one with `layers` an image manifest. Schema 1 is
 * refused (registries convert on demand when we do not accept it).
 */
export function parseManifest(bytes: Buffer, contentType: string): ManifestDocument {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new CdiError(ErrorCodes.RegistryPullFailed, 'invalid manifest: not JSON', { cause: err });
  }
  const doc = asRecord(parsed);
  if (doc === undefined) throw invalidManifest('not a JSON object');
  const mediaType = typeof doc['mediaType'] === 'string' ? doc['mediaType'] : contentType;
  if (
    mediaType === MediaTypes.DockerSchema1 ||
    mediaType === MediaTypes.DockerSchema1Signed ||
    doc['schemaVersion'] === 1
  ) {
    throw new CdiError(
      ErrorCodes.RegistryPullFailed,
      'unsupported manifest: Docker schema 1 images are not supported',
    );
  }
  const manifests = doc['manifests'];
  if (
    mediaType === MediaTypes.OciIndex ||
    mediaType === MediaTypes.DockerManifestList ||
    Array.isArray(manifests)
  ) {
    if (!Array.isArray(manifests)) throw invalidManifest('index without manifests');
    return {
      kind: 'index',
      manifests: manifests.map((m, i) => parseDescriptor(m, `manifests[${i}]`)),
    };
  }
  const layers = doc['layers'];
  if (!Array.isArray(layers)) throw invalidManifest('image manifest without layers');
  return {
    kind: 'image',
    config: parseDescriptor(doc['config'], 'config'),
    layers: layers.map((l, i) => parseDescriptor(l, `layers[${i}]`)),
  };
}

/** Node's `process.arch` to the OCI/Go architecture names. */
const NODE_TO_OCI_ARCH: Readonly<Record<string, string>> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** Spellings users and tools use for the same architecture. */
const ARCH_ALIASES: Readonly<Record<string, string>> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  i386: '386',
};

/** The OCI architecture of this machine (`x64` → `amd64`). */
export function machineArchitecture(nodeArch: string = process.arch): string {
  return NODE_TO_OCI_ARCH[nodeArch] ?? nodeArch;
}

/** Normalises an architecture name (`x86_64` → `amd64`, `aarch64` → `arm64`). */
export function normalizeArchitecture(arch: string): string {
  const lower = arch.trim().toLowerCase();
  return ARCH_ALIASES[lower] ?? lower;
}

/**
 * Picks the manifest of `wanted` from an index: OS and architecture must match; the variant too
 * when one is wanted. Entries without a platform (attestations) never match. Throws
 * `CDI_REGISTRY_ARCH_NOT_FOUND` with containers/image's words and the architectures present.
 */
export function choosePlatform(manifests: readonly Descriptor[], wanted: Platform): Descriptor {
  const arch = normalizeArchitecture(wanted.architecture);
  const found = manifests.find((m) => {
    const p = m.platform;
    if (p === undefined) return false;
    if (p.os !== wanted.os || normalizeArchitecture(p.architecture) !== arch) return false;
    return wanted.variant === undefined || wanted.variant === '' || p.variant === wanted.variant;
  });
  if (found !== undefined) return found;
  const present = [
    ...new Set(
      manifests
        .filter((m) => m.platform !== undefined && m.platform.os !== 'unknown')
        .map((m) => {
          const p = m.platform as Platform;
          return `${p.os}/${p.architecture}${p.variant === undefined ? '' : `/${p.variant}`}`;
        }),
    ),
  ];
  throw new CdiError(
    ErrorCodes.RegistryArchNotFound,
    `choosing image instance: no image found in image index for architecture "${wanted.architecture}", ` +
      `variant "${wanted.variant ?? ''}", OS "${wanted.os}" (the index has: ${present.join(', ') || 'none'})`,
    { details: { wanted: wanted.architecture, present } },
  );
}

/** Parses an image config blob (`config.Env`, `config.Labels`, `architecture`, `os`). */
export function parseImageConfig(bytes: Buffer): ImageConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new CdiError(ErrorCodes.RegistryPullFailed, 'invalid image config: not JSON', {
      cause: err,
    });
  }
  const doc = asRecord(parsed) ?? {};
  const inner = asRecord(doc['config']) ?? {};
  const env = Array.isArray(inner['Env'])
    ? inner['Env'].filter((e): e is string => typeof e === 'string')
    : [];
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(asRecord(inner['Labels']) ?? {})) {
    if (typeof v === 'string') labels[k] = v;
  }
  return {
    architecture: typeof doc['architecture'] === 'string' ? doc['architecture'] : undefined,
    os: typeof doc['os'] === 'string' ? doc['os'] : undefined,
    env,
    labels,
  };
}

const KUBEVIRT_ENV_MARKER = 'KUBEVIRT_IO_';
const KUBEVIRT_LABEL_PREFIX = 'kubevirt.io/';

/**
 * CDI's `envToLabel`: `INSTANCETYPE_KUBEVIRT_IO_DEFAULT_PREFERENCE` →
 * `instancetype.kubevirt.io/default-preference` (underscores before the marker become dots,
 * after it dashes, all lower-cased).
 */
export function envNameToLabel(name: string): string {
  const at = name.indexOf(KUBEVIRT_ENV_MARKER);
  const before = name.slice(0, at).replace(/_$/, '');
  const after = name.slice(at + KUBEVIRT_ENV_MARKER.length);
  const prefix = before === '' ? '' : `${before.split('_').join('.')}.`;
  return `${prefix}${KUBEVIRT_LABEL_PREFIX}${after.split('_').join('-')}`.toLowerCase();
}

/** CDI's `envsToLabels`: every `NAME=value` whose name contains `KUBEVIRT_IO_`. */
export function envsToLabels(env: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const entry of env) {
    const eq = entry.indexOf('=');
    if (eq < 0) continue;
    const name = entry.slice(0, eq);
    if (!name.includes(KUBEVIRT_ENV_MARKER)) continue;
    labels[envNameToLabel(name)] = entry.slice(eq + 1);
  }
  return labels;
}

/** Labels that mark a bootable container (bootc), which is not a container disk. */
const BOOTC_LABELS = ['containers.bootc', 'ostree.bootable'] as const;

/** The bootc label the image carries, if any (`containers.bootc=1` or `ostree.bootable=1`). */
export function bootcLabel(labels: Readonly<Record<string, string>>): string | undefined {
  return BOOTC_LABELS.find((l) => {
    const v = labels[l]?.toLowerCase();
    return v === '1' || v === 'true';
  });
}
