// SPDX-License-Identifier: Apache-2.0
/**
 * The one error model of the project (CONTRIBUTING.md). Every failure that crosses a module
 * boundary is a {@link CdiError} with a stable `code`; callers branch on the code, never on the
 * message text or on `instanceof` (two copies of a module may coexist, as undici's Errors.md
 * warns).
 * Every code is documented in docs/errors.md.
 */

/** Stable error codes, `CDI_<NOUN>_<PROBLEM>`. */
export const ErrorCodes = {
  /** Environment or configuration unusable (every bad variable is listed). */
  InvalidConfig: 'CDI_INVALID_CONFIG',
  /** A CLI argument or API input is malformed. */
  InvalidArgument: 'CDI_INVALID_ARGUMENT',
  /** The remote answered with an unexpected HTTP status. */
  UpstreamHttp: 'CDI_UPSTREAM_HTTP',
  /** The remote could not be reached (DNS, refused, TLS, reset before any byte). */
  ConnectFailed: 'CDI_CONNECT_FAILED',
  /** The input ended before the length it announced. */
  UnexpectedEof: 'CDI_UNEXPECTED_EOF',
  /** The body length disagrees with Content-Length. */
  ContentLengthMismatch: 'CDI_CONTENT_LENGTH_MISMATCH',
  /** The source sent nothing for the idle timeout too often: the stall budget is spent. */
  SourceStalled: 'CDI_SOURCE_STALLED',
  /** A dropped download could not be resumed safely (ETag changed, ranges refused, retries spent). */
  ResumeFailed: 'CDI_RESUME_FAILED',
  /** The transferred bytes do not match the expected digest. Terminal. */
  ChecksumMismatch: 'CDI_CHECKSUM_MISMATCH',
  /** The checksum specification `algo:hex` is malformed. */
  ChecksumInvalid: 'CDI_CHECKSUM_INVALID',
  /** The image does not fit the target. Terminal. */
  SizeValidation: 'CDI_SIZE_VALIDATION',
  /** The target ran out of space while writing (ENOSPC, EDQUOT). */
  NoSpace: 'CDI_NO_SPACE',
  /** The detected format is not supported (yet). */
  FormatUnsupported: 'CDI_FORMAT_UNSUPPORTED',
  /** A compressed stream is corrupt or truncated. */
  DecompressFailed: 'CDI_DECOMPRESS_FAILED',
  /**
   * A tar entry would be created under a link or a file of the archive, or replace a directory;
   * or a container-image layer entry climbs out of the image root.
   */
  ArchiveUnsafeEntry: 'CDI_ARCHIVE_UNSAFE_ENTRY',
  /** A tar entry's name (or a hard link's target name) is absolute or has a `..` component. */
  ArchivePathEscape: 'CDI_ARCHIVE_PATH_ESCAPE',
  /** A symbolic link's target is absolute, leaves the tree, or loops. */
  ArchiveLinkEscape: 'CDI_ARCHIVE_LINK_ESCAPE',
  /** A hard link names anything but a regular file extracted earlier from the same archive. */
  ArchiveHardLinkInvalid: 'CDI_ARCHIVE_HARDLINK_INVALID',
  /** A device node, FIFO or entry type that is never extracted. */
  ArchiveSpecialFile: 'CDI_ARCHIVE_SPECIAL_FILE',
  /** The archive is not a readable tar. */
  ArchiveInvalid: 'CDI_ARCHIVE_INVALID',
  /** The disk image is structurally invalid or hostile. */
  ImageInvalid: 'CDI_IMAGE_INVALID',
  /** Two structures of the image (tables, clusters, blocks) share host bytes. */
  ImageOverlap: 'CDI_IMAGE_OVERLAP',
  /** The image names a backing file; we never open paths named inside an image. */
  ImageBackingFile: 'CDI_IMAGE_BACKING_FILE',
  /** The image keeps its data in an external data file. */
  ImageExternalData: 'CDI_IMAGE_EXTERNAL_DATA',
  /** The image is encrypted. */
  ImageEncrypted: 'CDI_IMAGE_ENCRYPTED',
  /** The image uses a feature we do not implement (unknown incompatible bits, ...). */
  ImageUnsupportedFeature: 'CDI_IMAGE_UNSUPPORTED_FEATURE',
  /** Conversion to raw failed for another reason (wrapped native error). */
  ConvertFailed: 'CDI_CONVERT_FAILED',
  /** An S3 call failed. */
  S3Failed: 'CDI_S3_FAILED',
  /** A GCS service-account key is unusable, or its token endpoint refused it. */
  GcsAuthFailed: 'CDI_GCS_AUTH_FAILED',
  /** A registry pull failed (unknown tag, auth, manifest). CDI reason ImagePullFailed. */
  RegistryPullFailed: 'CDI_REGISTRY_PULL_FAILED',
  /** The container image holds no disk under /disk. */
  RegistryNoDisk: 'CDI_REGISTRY_NO_DISK',
  /** The image is a bootable container (bootc); not a container disk. */
  RegistryBootc: 'CDI_REGISTRY_BOOTC',
  /** No manifest for the wanted architecture. */
  RegistryArchNotFound: 'CDI_REGISTRY_ARCH_NOT_FOUND',
  /** A blob's bytes do not match its digest. */
  RegistryDigestMismatch: 'CDI_REGISTRY_DIGEST_MISMATCH',
  /** The transfer was aborted by a signal. */
  Aborted: 'CDI_ABORTED',
  /** Writing the target failed (not a capacity problem). */
  WriteFailed: 'CDI_WRITE_FAILED',
  /** The import needs a scratch volume that is not there. */
  ScratchRequired: 'CDI_SCRATCH_REQUIRED',
  /** A feature that is recognised but deliberately refused (e.g. registry pullMethod node). */
  NotSupported: 'CDI_NOT_SUPPORTED',
  /** A Kubernetes API call failed. */
  KubeApi: 'CDI_KUBE_API',
  /** An upload token is missing, malformed, expired, forged or for another target. */
  UploadTokenInvalid: 'CDI_UPLOAD_TOKEN_INVALID',
  /** The upload target is not ready or already done. */
  UploadNotReady: 'CDI_UPLOAD_NOT_READY',
  /** A native addon was built for another Node.js ABI than the one running it. */
  NativeAbiMismatch: 'CDI_NATIVE_ABI_MISMATCH',
  /** A clone's extent stream is malformed, truncated or does not fit its announced size. */
  CloneStreamInvalid: 'CDI_CLONE_STREAM_INVALID',
  /** A bug: something that should not happen. */
  Internal: 'CDI_INTERNAL',
} as const;

/** One of {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Options of {@link CdiError}: ES2022 `cause` plus structured fields. */
export interface CdiErrorOptions {
  readonly cause?: unknown;
  /** HTTP status that an upstream answered, or that an HTTP edge should answer. */
  readonly httpStatus?: number;
  /** Whether repeating the same operation may succeed. */
  readonly retryable?: boolean;
  /** Extra machine-readable context (sizes, digests, offsets). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Base class of every error this project raises on purpose. */
export class CdiError extends Error {
  override readonly name: string = 'CdiError';
  readonly code: ErrorCode;
  readonly httpStatus: number | undefined;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: CdiErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.httpStatus = options.httpStatus;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

/** The checksum of the transferred bytes differs from the expected one (CDI `checksum.go`). */
export class ChecksumMismatchError extends CdiError {
  override readonly name = 'ChecksumMismatchError';
  constructor(
    readonly algorithm: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      ErrorCodes.ChecksumMismatch,
      `checksum validation failed: checksum mismatch: expected ${algorithm}:${expected}, calculated ${algorithm}:${actual}`,
      { details: { algorithm, expected, actual } },
    );
  }
}

/** The remote answered with a status we cannot use. */
export class UpstreamHttpError extends CdiError {
  override readonly name = 'UpstreamHttpError';
  constructor(
    readonly statusCode: number,
    statusText: string,
    options: { readonly retryable?: boolean; readonly cause?: unknown } = {},
  ) {
    super(
      ErrorCodes.UpstreamHttp,
      `expected status code 200, got ${statusCode}. Status: ${statusCode} ${statusText}`.trimEnd(),
      {
        httpStatus: statusCode,
        retryable: options.retryable ?? isRetryableStatus(statusCode),
        cause: options.cause,
      },
    );
  }
}

/** Narrows an unknown value to a {@link CdiError} by its shape (a `code` starting with `CDI_`). */
export function isCdiError(err: unknown): err is CdiError {
  const code = errorCode(err);
  return err instanceof Error && code !== undefined && code.startsWith('CDI_');
}

/** Reads `err.code` of any error-like value (CdiError, NodeJS.ErrnoException, undici errors). */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = err.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * True when the error means the target is too small (CDI `IsNoCapacityError`): ENOSPC, EDQUOT and
 * size validation failures, looking through `cause` chains.
 */
export function isNoCapacityError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 8; depth++) {
    const code = errorCode(e);
    if (
      code === 'ENOSPC' ||
      code === 'EDQUOT' ||
      code === ErrorCodes.SizeValidation ||
      code === ErrorCodes.NoSpace
    ) {
      return true;
    }
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
}

/** Network error codes after which a retry may succeed (undici's retry-handler list). */
const RETRYABLE_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ENOTFOUND',
  'ENETDOWN',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EHOSTUNREACH',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** HTTP statuses worth retrying: 408, 429 and 5xx except 501/505. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** True when repeating the operation may succeed (network codes, retryable CdiErrors). */
export function isRetryable(err: unknown): boolean {
  if (isCdiError(err)) return err.retryable;
  const code = errorCode(err);
  if (code !== undefined && RETRYABLE_NETWORK_CODES.has(code)) return true;
  return err instanceof Error && err.cause !== undefined ? isRetryable(err.cause) : false;
}

/** Wraps any error at a phase boundary with a "why" (CDI `data-processor.go`), keeping its code. */
export function wrapError(err: unknown, why: string): CdiError {
  const code = isCdiError(err) ? err.code : ErrorCodes.Internal;
  const retryable = isCdiError(err) ? err.retryable : isRetryable(err);
  const httpStatus = isCdiError(err) ? err.httpStatus : undefined;
  const details = isCdiError(err) ? err.details : undefined;
  return new CdiError(code, `${why}: ${errorMessage(err)}`, {
    cause: err,
    retryable,
    ...(httpStatus === undefined ? {} : { httpStatus }),
    ...(details === undefined ? {} : { details }),
  });
}

/** Turns an ENOSPC/EDQUOT/other I/O failure of the target into a CdiError. */
export function toWriteError(err: unknown, target: string): CdiError {
  if (isCdiError(err)) return err;
  const code = errorCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new CdiError(ErrorCodes.NoSpace, `no space left on device writing ${target}`, {
      cause: err,
    });
  }
  return new CdiError(ErrorCodes.WriteFailed, `writing ${target} failed: ${errorMessage(err)}`, {
    cause: err,
  });
}
