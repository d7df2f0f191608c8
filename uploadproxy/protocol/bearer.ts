// SPDX-License-Identifier: Apache-2.0
/** Parsing the upload proxy's `Authorization` header (pure; CDI's regular expression). */
import { CdiError, ErrorCodes } from '../../common/errors.js';

const BEARER = /^Bearer\s+([A-Za-z0-9\-._~+/]+=*)$/i;

/** The token of `Authorization: Bearer TOKEN`; 400 `CDI_UPLOAD_TOKEN_INVALID` when missing or malformed. */
export function parseBearer(header: string | undefined): string {
  if (header === undefined || header === '')
    throw new CdiError(ErrorCodes.UploadTokenInvalid, 'missing Authorization header', {
      httpStatus: 400,
    });
  const m = BEARER.exec(header.trim());
  if (m?.[1] === undefined)
    throw new CdiError(
      ErrorCodes.UploadTokenInvalid,
      'malformed Authorization header, want "Bearer TOKEN"',
      {
        httpStatus: 400,
      },
    );
  return m[1];
}
