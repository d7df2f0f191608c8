// SPDX-License-Identifier: Apache-2.0
import {
  ContentTypes,
  ImporterEnv,
  PodPaths,
  PullMethods,
  SourceKinds,
  type ContentType,
  type PullMethod,
  type SourceKind,
} from '../common/contract.js';
import { parseDuration } from '../common/duration.js';
import { EnvReader } from '../common/env-reader.js';
import { parseChecksum, type ExpectedChecksum } from './checksum/checksum.js';
import { DEFAULT_TRANSFER_LIMITS, type TransferLimits } from './sources/http-limits.js';

/** The importer pod's configuration, parsed once from CDI's environment variables and frozen. */
export interface ImporterConfig {
  readonly source: SourceKind;
  readonly endpoint: string;
  readonly contentType: ContentType;
  /** IMPORTER_IMAGE_SIZE in bytes. */
  readonly imageSize: number | undefined;
  readonly accessKeyId: string | undefined;
  readonly secretKey: string | undefined;
  /** GCS service-account key file (GOOGLE_APPLICATION_CREDENTIALS). */
  readonly gcsCredentialsFile: string | undefined;
  /** GCS endpoint replacing Google's (STORAGE_EMULATOR_HOST). */
  readonly gcsEndpoint: string | undefined;
  readonly certDir: string | undefined;
  readonly insecureTls: boolean;
  readonly checksum: ExpectedChecksum | undefined;
  /** `Name: value` lines from IMPORTER_EXTRA_HEADER_*, in variable-name order. */
  readonly extraHeaders: readonly string[];
  readonly pullMethod: PullMethod;
  /** pullMethod node: wait for this file before reading the endpoint (IMPORTER_READY_FILE). */
  readonly readyFile: string | undefined;
  /** pullMethod node: create this file when the import succeeded (IMPORTER_DONE_FILE). */
  readonly doneFile: string | undefined;
  readonly architecture: string | undefined;
  readonly filesystemOverhead: number;
  readonly preallocation: boolean;
  readonly ownerUid: string;
  readonly proxy: {
    readonly httpProxy?: string;
    readonly httpsProxy?: string;
    readonly noProxy?: string;
  };
  readonly dataDir: string;
  readonly blockDevice: string;
  readonly scratchDir: string;
  readonly terminationLog: string;
  /** Secret extra headers: every file under each subdirectory is one `Name: value` line. */
  readonly extraHeadersDir: string;
  /** Where the HTTPS metrics endpoint listens, or undefined when disabled. */
  readonly metrics: { readonly host: string; readonly port: number } | undefined;
  /** Idle timeout per attempt and stall budget of an HTTP transfer. */
  readonly limits: TransferLimits;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Parses CDI's importer environment into a frozen {@link ImporterConfig}. Every problem is
 * collected and reported at once as `CDI_INVALID_CONFIG`. No other module reads `process.env`.
 */
export function loadImporterConfig(env: Env): ImporterConfig {
  const reader = new EnvReader(env);
  const { problems } = reader;
  const get = (name: string): string | undefined => reader.get(name);

  const source = parseEnum(
    get(ImporterEnv.Source) ?? SourceKinds.Http,
    Object.values(SourceKinds),
    (v) => problems.push(`Unknown data source: ${v}`),
  );
  const contentType = parseEnum(
    get(ImporterEnv.ContentType) ?? ContentTypes.Kubevirt,
    Object.values(ContentTypes),
    (v) => problems.push(`${ImporterEnv.ContentType}: unknown content type ${JSON.stringify(v)}`),
  );
  const pullMethod = parseEnum(
    get(ImporterEnv.PullMethod) ?? PullMethods.Pod,
    Object.values(PullMethods),
    (v) => problems.push(`${ImporterEnv.PullMethod}: unknown pull method ${JSON.stringify(v)}`),
  );
  const endpoint = get(ImporterEnv.Endpoint) ?? '';
  if (endpoint === '' && source !== SourceKinds.None)
    problems.push(`${ImporterEnv.Endpoint} is required`);

  const imageSize = reader.quantity(ImporterEnv.ImageSize);
  const checksumText = get(ImporterEnv.Checksum);
  const checksum =
    checksumText === undefined
      ? undefined
      : reader.attempt(ImporterEnv.Checksum, () => parseChecksum(checksumText), undefined);
  const filesystemOverhead = reader.fraction(ImporterEnv.FilesystemOverhead);
  const preallocation = reader.bool(ImporterEnv.Preallocation);
  const insecureTls = reader.bool(ImporterEnv.InsecureTls);
  const metrics = reader.attempt(
    ImporterEnv.MetricsAddress,
    () => parseListenAddress(get(ImporterEnv.MetricsAddress) ?? '0.0.0.0:8443'),
    undefined,
  );

  const limits = {
    idleTimeoutMs: positiveDuration(
      reader,
      ImporterEnv.IdleTimeout,
      DEFAULT_TRANSFER_LIMITS.idleTimeoutMs,
    ),
    stallBudgetMs: positiveDuration(
      reader,
      ImporterEnv.StallBudget,
      DEFAULT_TRANSFER_LIMITS.stallBudgetMs,
    ),
  };

  reader.throwIfProblems();
  const proxy = {
    ...optional('httpProxy', get(ImporterEnv.HttpProxy) ?? get('HTTP_PROXY')),
    ...optional('httpsProxy', get(ImporterEnv.HttpsProxy) ?? get('HTTPS_PROXY')),
    ...optional('noProxy', get(ImporterEnv.NoProxy) ?? get('NO_PROXY')),
  };
  return Object.freeze({
    source,
    endpoint,
    contentType,
    imageSize,
    accessKeyId: get(ImporterEnv.AccessKeyId),
    secretKey: get(ImporterEnv.SecretKey),
    gcsCredentialsFile: get(ImporterEnv.GoogleCredentialsFile),
    gcsEndpoint: get(ImporterEnv.StorageEmulatorHost),
    certDir: get(ImporterEnv.CertDir),
    insecureTls,
    checksum,
    extraHeaders: extraHeaders(env),
    pullMethod,
    readyFile: nonEmpty(get(ImporterEnv.ReadyFile)),
    doneFile: nonEmpty(get(ImporterEnv.DoneFile)),
    architecture: get(ImporterEnv.RegistryImageArchitecture),
    filesystemOverhead,
    preallocation,
    ownerUid: get(ImporterEnv.OwnerUid) ?? '',
    proxy: Object.freeze(proxy),
    dataDir: get(ImporterEnv.DataDir) ?? PodPaths.DataDir,
    blockDevice: get(ImporterEnv.BlockDevice) ?? PodPaths.BlockDevice,
    scratchDir: get(ImporterEnv.ScratchDir) ?? PodPaths.ScratchDir,
    terminationLog: get(ImporterEnv.TerminationLog) ?? PodPaths.TerminationLog,
    extraHeadersDir: get(ImporterEnv.ExtraHeadersDir) ?? PodPaths.ExtraHeadersDir,
    metrics,
    limits: Object.freeze(limits),
  });
}

/** A duration variable (`60s`, `4m`, or seconds) that must be positive; `fallback` when unset. */
export function positiveDuration(reader: EnvReader, name: string, fallback: number): number {
  const text = reader.get(name);
  if (text === undefined) return fallback;
  return reader.attempt(
    name,
    () => {
      const ms = parseDuration(text);
      if (ms <= 0) throw new Error(`${JSON.stringify(text)} must be longer than 0`);
      return ms;
    },
    fallback,
  );
}

/** CDI sets every variable, empty when unused. */
function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

function parseEnum<T extends string>(
  value: string,
  allowed: readonly T[],
  onBad: (v: string) => void,
): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  onBad(value);
  return allowed[0] as T;
}

function parseListenAddress(text: string): { host: string; port: number } | undefined {
  if (text === 'off') return undefined;
  const colon = text.lastIndexOf(':');
  const port = Number(text.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${JSON.stringify(text)} is not host:port`);
  }
  return { host: text.slice(0, colon), port };
}

/** IMPORTER_EXTRA_HEADER_0..n, sorted by their numeric suffix. */
function extraHeaders(env: Env): string[] {
  return Object.entries(env)
    .filter(
      (e): e is [string, string] =>
        e[0].startsWith(ImporterEnv.ExtraHeaderPrefix) && e[1] !== undefined,
    )
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([, v]) => v);
}
