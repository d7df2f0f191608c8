// SPDX-License-Identifier: Apache-2.0
/** The native converter's errors as {@link CdiError}s, and its refusals. */
import { CdiError, ErrorCodes, errorCode, errorMessage, type ErrorCode } from '../common/errors.js';

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCodes));

/**
 * Turns what a conversion threw into a {@link CdiError}: CdiErrors (from readers) pass through;
 * native errors keep their `CDI_*` code; anything else becomes `CDI_CONVERT_FAILED` with `cause`.
 */
export function toConvertError(err: unknown, signal?: AbortSignal): CdiError {
  if (err instanceof CdiError) return err;
  if (signal?.aborted === true) {
    return new CdiError(ErrorCodes.Aborted, 'qcow2 conversion aborted', { cause: err });
  }
  const code = errorCode(err);
  if (code !== undefined && KNOWN_CODES.has(code)) {
    return new CdiError(code as ErrorCode, errorMessage(err), { cause: err });
  }
  return new CdiError(ErrorCodes.ConvertFailed, `qcow2 conversion failed: ${errorMessage(err)}`, {
    cause: err,
  });
}

/** Throws `CDI_ABORTED` when the signal fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw new CdiError(ErrorCodes.Aborted, 'qcow2 conversion aborted', { cause: signal.reason });
  }
}

/** Why an image is refused (backing file, external data, encryption, differencing disk). */
export interface Refusal {
  readonly code: string;
  readonly message: string;
}

/** Throws the refusal of an image (the native side names a `CDI_*` code) as its CdiError. */
export function throwIfRefused(info: { readonly refusal?: Refusal | undefined }): void {
  const { refusal } = info;
  if (refusal === undefined) return;
  const code = KNOWN_CODES.has(refusal.code)
    ? (refusal.code as ErrorCode)
    : ErrorCodes.ConvertFailed;
  throw new CdiError(code, refusal.message);
}
