// SPDX-License-Identifier: Apache-2.0
/**
 * The one place where the upload proxy and the upload server turn errors into HTTP answers
 * (CONTRIBUTING.md; CDI `handleStreamError`): malformed header 400, bad token 401, target not ready
 * 503, no capacity 400, concurrent upload 503, finished 409, everything else 500. Error text is
 * HTML-escaped, as CDI's servers do, because browsers may render it.
 */
import type { ServerResponse } from 'node:http';
import {
  ErrorCodes,
  errorCode,
  errorMessage,
  isCdiError,
  isNoCapacityError,
} from '../../common/errors.js';

/** HTTP status for an error: its own `httpStatus` when set, else by code. */
export function httpStatusOf(err: unknown): number {
  if (
    isCdiError(err) &&
    err.httpStatus !== undefined &&
    err.httpStatus >= 400 &&
    err.httpStatus < 600
  )
    return err.httpStatus;
  if (isNoCapacityError(err)) return 400;
  switch (errorCode(err)) {
    case ErrorCodes.InvalidArgument:
    case ErrorCodes.FormatUnsupported:
    case ErrorCodes.ImageInvalid:
    case ErrorCodes.ImageBackingFile:
    case ErrorCodes.ImageEncrypted:
    case ErrorCodes.ImageExternalData:
    case ErrorCodes.ImageUnsupportedFeature:
    case ErrorCodes.DecompressFailed:
    case ErrorCodes.ChecksumMismatch:
      return 400;
    case ErrorCodes.UploadTokenInvalid:
      return 401;
    case ErrorCodes.UploadNotReady:
      return 503;
    default:
      return 500;
  }
}

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&#34;',
  "'": '&#39;',
};

/** HTML-escapes text (Go's `html.EscapeString` set). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** Writes a plain-text answer (escaped) unless headers are already gone; then ends the response. */
export function sendText(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = text === '' ? '' : `${escapeHtml(text)}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

/** Answers an error with its status; `prefix` is CDI's context ("Saving stream failed"). */
export function sendError(res: ServerResponse, err: unknown, prefix?: string): void {
  const message = errorMessage(err);
  sendText(res, httpStatusOf(err), prefix === undefined ? message : `${prefix}: ${message}`);
}
