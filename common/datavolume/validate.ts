// SPDX-License-Identifier: Apache-2.0
/**
 * DataVolume validation: what CDI's admission webhook (`datavolume-validate.go`) rejects at
 * create time, and the spec updates it refuses. `cdi apiserver`'s validating webhook rejects with
 * these messages; the controller reports the same ones as a condition and a Warning event for a
 * DataVolume that reached the cluster without the webhook. Pure; messages follow CDI's wording
 * where CDI has one.
 */
import type {
  ClaimSpec,
  DataVolume,
  DataVolumeSource,
  DataVolumeSourceRef,
  DataVolumeSpec,
} from '../api/datavolume.js';
import { parseQuantity } from '../quantity.js';
import { ContentTypes } from '../contract.js';

/** Source kinds the import path serves, in CDI's JSON names. */
export const SUPPORTED_SOURCES = [
  'http',
  's3',
  'gcs',
  'registry',
  'blank',
  'upload',
  'pvc',
  'snapshot',
] as const;
/** One of {@link SUPPORTED_SOURCES}. */
export type SupportedSourceKind = (typeof SUPPORTED_SOURCES)[number];

const KNOWN_SOURCES = [
  ...SUPPORTED_SOURCES,
  'imageio',
  'vddk',
] as const satisfies readonly (keyof DataVolumeSource)[];

const CHECKSUM_HEX_LENGTHS: Readonly<Record<string, number>> = {
  md5: 32,
  sha1: 40,
  sha256: 64,
  sha512: 128,
};

const VALID_ACCESS_MODES: ReadonlySet<string> = new Set([
  'ReadWriteOnce',
  'ReadOnlyMany',
  'ReadWriteMany',
  'ReadWriteOncePod',
]);

const ONE_MIB = 1024 * 1024;

/** The keys of `spec.source` that are set (objects, even empty ones). */
export function sourceKinds(source: DataVolumeSource | undefined): string[] {
  if (source === undefined || source === null || typeof source !== 'object') return [];
  return Object.entries(source)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k]) => k);
}

/** Validates a checksum `algo:hex` (CDI `checksum.go` syntax); returns a problem or undefined. */
export function checksumProblem(spec: string): string | undefined {
  const idx = spec.indexOf(':');
  const algo = (idx < 0 ? '' : spec.slice(0, idx)).trim().toLowerCase();
  const hex = (idx < 0 ? '' : spec.slice(idx + 1)).trim();
  const want = CHECKSUM_HEX_LENGTHS[algo];
  if (want === undefined || hex.length !== want || !/^[0-9a-fA-F]+$/.test(hex)) {
    return `Invalid checksum format: ${spec} (want algorithm:hex with md5, sha1, sha256 or sha512)`;
  }
  return undefined;
}

function urlProblem(
  kind: string,
  url: string | undefined,
  schemes: readonly string[],
): string | undefined {
  if (url === undefined || url === '') return `source ${kind} url is missing`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `source ${kind} url ${JSON.stringify(url)} is not a valid URL`;
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  if (!schemes.includes(scheme)) {
    return `source ${kind} url scheme ${JSON.stringify(scheme)} is not one of: ${schemes.join(', ')}`;
  }
  return undefined;
}

function cloneProblems(dv: DataVolume, contentType: string): string[] {
  const spec = dv.spec ?? {};
  const problems: string[] = [];
  const pvc = spec.source?.pvc;
  if (pvc !== undefined) {
    if (pvc.name === undefined || pvc.name === '') problems.push('Source pvc name is missing');
  }
  const snapshot = spec.source?.snapshot;
  if (snapshot !== undefined && (snapshot.name ?? '') === '')
    problems.push('Source snapshot name is missing');
  if (spec.sourceRef !== undefined) problems.push(...sourceRefProblems(spec.sourceRef));
  if (contentType === ContentTypes.Archive) {
    // A clone copies the source's disk image byte for byte; an archive claim holds a file tree.
    problems.push('ContentType archive is not supported for clones (use kubevirt)');
  }
  return problems;
}

function sourceRefProblems(ref: DataVolumeSourceRef): string[] {
  const problems: string[] = [];
  if (ref.kind !== 'DataSource') {
    problems.push(
      `Unsupported sourceRef kind ${JSON.stringify(ref.kind ?? '')}, currently only "DataSource" is supported`,
    );
  }
  if (ref.name === undefined || ref.name === '') problems.push('SourceRef name is missing');
  return problems;
}

/** True when the DataVolume clones (`source.pvc`, `source.snapshot` or a `sourceRef`). */
export function isCloneSpec(dv: DataVolume): boolean {
  const source = dv.spec?.source;
  return (
    source?.pvc !== undefined || source?.snapshot !== undefined || dv.spec?.sourceRef !== undefined
  );
}

function claimProblems(claim: ClaimSpec, isPvcApi: boolean, sizeOptional: boolean): string[] {
  const problems: string[] = [];
  const modes = claim.accessModes ?? [];
  if (isPvcApi && modes.length !== 1) {
    problems.push(`PVC access modes must contain exactly one entry, got ${modes.length}`);
  }
  for (const m of modes) {
    if (!VALID_ACCESS_MODES.has(m))
      problems.push(`Unsupported value: ${JSON.stringify(m)} for access mode`);
  }
  const size = claim.resources?.requests?.['storage'];
  if (size === undefined) {
    if (!sizeOptional) problems.push('PVC size is missing');
  } else {
    try {
      const bytes = parseQuantity(String(size));
      if (bytes < ONE_MIB)
        problems.push(`PVC size ${String(size)} is too small, the minimum is 1Mi`);
    } catch {
      problems.push(`PVC size ${JSON.stringify(size)} is not a valid quantity`);
    }
  }
  const vm = claim.volumeMode;
  if (vm !== undefined && vm !== 'Filesystem' && vm !== 'Block' && vm !== 'FromStorageProfile') {
    problems.push(`Unsupported volumeMode ${JSON.stringify(vm)}`);
  }
  if ((claim.storageClassName ?? '').length > 253)
    problems.push('storageClassName is longer than 253 characters');
  return problems;
}

function sourceProblems(source: DataVolumeSource, contentType: string): string[] {
  const problems: string[] = [];
  if (source.http !== undefined) {
    const p = urlProblem('http', source.http.url, ['http', 'https']);
    if (p !== undefined) problems.push(p);
    if (source.http.checksum !== undefined && source.http.checksum !== '') {
      const c = checksumProblem(source.http.checksum);
      if (c !== undefined) problems.push(c);
    }
    for (const h of source.http.extraHeaders ?? []) {
      if (!h.includes(':'))
        problems.push(`extra header ${JSON.stringify(h)} is not of the form "Name: value"`);
    }
  }
  if (source.s3 !== undefined) {
    const p = urlProblem('s3', source.s3.url, ['http', 'https', 's3']);
    if (p !== undefined) problems.push(p);
  }
  if (source.gcs !== undefined) {
    const p = urlProblem('gcs', source.gcs.url, ['gs', 'http', 'https']);
    if (p !== undefined) problems.push(p);
  }
  if (source.registry !== undefined) problems.push(...registryProblems(source, contentType));
  if (source.blank !== undefined && contentType === ContentTypes.Archive) {
    problems.push('SourceType cannot be blank and the contentType be archive');
  }
  return problems;
}

function registryProblems(source: DataVolumeSource, contentType: string): string[] {
  const reg = source.registry ?? {};
  const problems: string[] = [];
  const hasUrl = reg.url !== undefined && reg.url !== '';
  const hasStream = reg.imageStream !== undefined && reg.imageStream !== '';
  if (hasUrl === hasStream) problems.push('Source registry should have either url or imageStream');
  if (hasStream)
    problems.push(
      'Source registry imageStream is not supported: it names an OpenShift ImageStream, and ' +
        'this CDI has no OpenShift image registry to resolve it; use url',
    );
  if (hasUrl) {
    const p = urlProblem('registry', reg.url, ['docker', 'oci-archive']);
    if (p !== undefined) problems.push(p);
  }
  if (reg.pullMethod !== undefined && reg.pullMethod !== 'pod' && reg.pullMethod !== 'node')
    problems.push(`ImportMethod ${reg.pullMethod} is neither pod or node`);
  if (contentType !== ContentTypes.Kubevirt)
    problems.push('ContentType must be kubevirt when Source is Registry');
  return problems;
}

/**
 * Every problem with a DataVolume's spec, empty when it is valid. `volumeMode` is the rendered
 * claim's mode (after defaults) so archive-to-block is caught.
 */
export function validateDataVolume(dv: DataVolume): string[] {
  const spec = dv.spec;
  if (spec === undefined) return ['Missing Data volume spec'];
  const problems: string[] = [];
  const name = dv.metadata.name ?? '';
  if (name.length > 253) problems.push('Name cannot be longer than 253 characters');
  const kinds = sourceKinds(spec.source);
  if (spec.sourceRef !== undefined) {
    if (kinds.length > 0) problems.push('Data volume should have either Source or SourceRef');
  } else if (kinds.length === 0) {
    problems.push('Missing Data volume source');
  } else if (kinds.length > 1) {
    problems.push(`Multiple Data volume sources: ${kinds.join(', ')}`);
  }
  const kind = kinds.length === 1 ? kinds[0] : undefined;
  if (kind !== undefined && !(KNOWN_SOURCES as readonly string[]).includes(kind)) {
    problems.push(`Unknown Data volume source ${JSON.stringify(kind)}`);
  } else if (kind !== undefined && !(SUPPORTED_SOURCES as readonly string[]).includes(kind)) {
    problems.push(`Data volume source ${kind} is not supported`);
  }
  const contentType =
    spec.contentType === undefined || spec.contentType === ''
      ? ContentTypes.Kubevirt
      : spec.contentType;
  if (contentType !== ContentTypes.Kubevirt && contentType !== ContentTypes.Archive) {
    problems.push('ContentType not one of: kubevirt, archive');
  }
  if (spec.source !== undefined && kinds.length === 1)
    problems.push(...sourceProblems(spec.source, contentType));
  if (isCloneSpec(dv)) problems.push(...cloneProblems(dv, contentType));
  if (spec.pvc !== undefined && spec.storage !== undefined) {
    problems.push('Duplicate storage definition, both target storage and target pvc defined');
  } else if (spec.pvc === undefined && spec.storage === undefined) {
    problems.push('Missing Data volume PVC');
  }
  const claim = spec.pvc ?? spec.storage;
  if (claim !== undefined) {
    // CDI: the size may be left out only with `storage` and a clone source (it is the source's).
    const sizeOptional = spec.storage !== undefined && isCloneSpec(dv);
    problems.push(...claimProblems(claim, spec.pvc !== undefined, sizeOptional));
    if (contentType === ContentTypes.Archive && claim.volumeMode === 'Block') {
      problems.push('ContentType Archive cannot have block volumeMode');
    }
  }
  return problems;
}

/** CDI's message for a refused spec update. */
export const SPEC_UPDATE_REFUSED = 'Cannot update DataVolume Spec';

/** JSON equality, key order ignored (specs come from JSON, so there are no other value kinds). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => sameJson(v, b[i]));
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  // An absent key and a null one are the same to the Go types CDI decodes into.
  const keys = new Set([...Object.keys(ra), ...Object.keys(rb)]);
  for (const k of keys) {
    const va = ra[k] ?? null;
    const vb = rb[k] ?? null;
    if (!sameJson(va, vb)) return false;
  }
  return true;
}

/**
 * The problem with changing a DataVolume's spec from `before` to `after`, or undefined when the
 * change is allowed: the spec is immutable (its claim and source are already made from it),
 * except the checkpoints of a multi-stage (VDDK, ImageIO) import, which advance by spec updates.
 */
export function specUpdateProblem(before: DataVolume, after: DataVolume): string | undefined {
  const oldSpec = before.spec ?? {};
  const newSpec = after.spec ?? {};
  const multiStage =
    (newSpec.checkpoints ?? []).length > 0 &&
    (newSpec.source?.vddk !== undefined || newSpec.source?.imageio !== undefined);
  const withoutCheckpoints = (spec: DataVolumeSpec): DataVolumeSpec => {
    const { checkpoints: _c, finalCheckpoint: _f, ...rest } = spec;
    return rest;
  };
  if (multiStage && sameJson(withoutCheckpoints(oldSpec), withoutCheckpoints(newSpec)))
    return undefined;
  return sameJson(oldSpec, newSpec) ? undefined : SPEC_UPDATE_REFUSED;
}
