// SPDX-License-Identifier: Apache-2.0
/**
 * Request-header and URL helpers of the http source: CDI's extra headers, basic auth from the
 * access key and secret, credential redaction, and the response-header readers resume relies on.
 */
import type { IncomingHttpHeaders } from 'node:http';

import { CdiError, ErrorCodes } from '../../common/errors.js';

/**
 * Splits CDI extra headers (`IMPORTER_EXTRA_HEADER_*`, `Name: value`) at the first `:`; the value
 * is trimmed and may itself hold colons. A line without `:` or with an empty name is refused.
 */
export function parseExtraHeaders(lines: readonly string[]): Array<[name: string, value: string]> {
  return lines.map((line) => {
    const i = line.indexOf(':');
    const name = i < 0 ? '' : line.slice(0, i).trim();
    if (name === '' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new CdiError(
        ErrorCodes.InvalidConfig,
        `extra header is not "Name: value": ${JSON.stringify(redactHeaderLine(line))}`,
      );
    }
    return [name.toLowerCase(), line.slice(i + 1).trim()];
  });
}

/** Keeps a header line's name only, for messages (values are often credentials). */
function redactHeaderLine(line: string): string {
  const i = line.indexOf(':');
  return i < 0 ? `${line.slice(0, 12)}…` : `${line.slice(0, i)}: <redacted>`;
}

/** `Basic base64(user:password)`, as Go's `SetBasicAuth`. */
export function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

/** The URL with userinfo and query values replaced, safe for logs and error messages. */
export function redactUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(url.toString());
  } catch {
    return '<invalid url>';
  }
  if (u.username !== '') u.username = 'redacted';
  if (u.password !== '') u.password = 'redacted';
  // Presigned URLs carry signatures in the query: keep the names, drop the values.
  for (const key of [...u.searchParams.keys()]) u.searchParams.set(key, 'redacted');
  return u.toString();
}

/** First value of a response header. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A non-negative integer header (Content-Length), or undefined. */
export function headerInteger(headers: IncomingHttpHeaders, name: string): number | undefined {
  const v = headerValue(headers, name);
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A parsed `Content-Range: bytes first-last/total` (total undefined for `*`). */
export interface ContentRange {
  readonly first: number;
  readonly last: number;
  readonly total: number | undefined;
}

/** Parses a `Content-Range` of a 206 answer; undefined when absent or malformed. */
export function parseContentRange(value: string | undefined): ContentRange | undefined {
  const m = value === undefined ? null : /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  if (m === null) return undefined;
  const first = Number(m[1]);
  const last = Number(m[2]);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (last < first || (total !== undefined && last >= total)) return undefined;
  return { first, last, total };
}

/** A strong ETag (usable in `If-Range`), or undefined for weak or missing ones. */
export function strongEtag(headers: IncomingHttpHeaders): string | undefined {
  const v = headerValue(headers, 'etag');
  return v === undefined || v.startsWith('W/') ? undefined : v;
}

/** Whether two URLs share scheme, host and port (where credentials may follow a redirect). */
export function isSameOrigin(a: URL, b: URL): boolean {
  return a.origin === b.origin;
}
