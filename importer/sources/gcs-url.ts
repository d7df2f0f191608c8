// SPDX-License-Identifier: Apache-2.0
/**
 * How a GCS source URL names its endpoint, bucket and object (CDI `gcs-datasource.go`). The
 * rules, first match wins:
 *
 * 1. `gs://bucket/object`: Google's endpoint, or the emulator endpoint when one is configured
 *    (`STORAGE_EMULATOR_HOST`, `--gcs-endpoint`), as Google's client libraries do.
 * 2. `http(s)://host/storage/v1/b/BUCKET/o/OBJECT` (the JSON API's object URL, `alt=media` or
 *    not; also under `/download/`): that host; the object name is one escaped path segment.
 * 3. `http(s)://host/BUCKET/OBJECT` (the XML API, CDI's https form): that host is the endpoint,
 *    as CDI passes it to the client. `storage.cloud.google.com` (the console's cookie-auth
 *    download host) is read through `storage.googleapis.com` instead.
 *
 * The endpoint override replaces Google's own hosts only: a URL naming another host already
 * says where the server is.
 */
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { redactUrl } from './http-headers.js';

/** Google's storage endpoint (XML API). */
export const GCS_DEFAULT_ENDPOINT = 'https://storage.googleapis.com';
const GOOGLE_HOSTS = new Set(['storage.googleapis.com', 'storage.cloud.google.com']);
const JSON_API_PATH = /^\/(?:download\/)?storage\/v1\/b\/([^/]+)\/o\/(.+)$/;

/** Where a GCS object lives. */
export interface GcsLocation {
  /** Origin the object is read from (XML API): `https://storage.googleapis.com` or an emulator. */
  readonly endpoint: string;
  readonly bucket: string;
  readonly object: string;
}

/**
 * The origin of an emulator setting: `host:port` (plain HTTP, as Google's libraries read
 * `STORAGE_EMULATOR_HOST`) or a full `http(s)://host:port` URL.
 */
export function emulatorOrigin(value: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch (err) {
    throw new CdiError(ErrorCodes.InvalidArgument, `invalid GCS endpoint ${value}`, {
      cause: err,
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CdiError(ErrorCodes.InvalidArgument, `GCS endpoint must be http(s): ${value}`);
  }
  return url.origin;
}

function invalid(raw: string, why: string): CdiError {
  return new CdiError(ErrorCodes.InvalidArgument, `GCS URL ${redactUrl(raw)}: ${why}`);
}

function decodeSegments(path: string, raw: string): string {
  try {
    return path.split('/').map(decodeURIComponent).join('/');
  } catch (err) {
    throw new CdiError(ErrorCodes.InvalidArgument, `GCS URL ${redactUrl(raw)}: bad escape`, {
      cause: err,
    });
  }
}

function bucketAndObject(path: string, raw: string): { bucket: string; object: string } {
  const trimmed = path.replace(/^\/+/, '');
  const slash = trimmed.indexOf('/');
  const bucket = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const object = slash < 0 ? '' : decodeSegments(trimmed.slice(slash + 1), raw);
  if (bucket === '') throw invalid(raw, 'no bucket');
  if (object === '') throw invalid(raw, 'no object');
  return { bucket, object };
}

/** Parses a GCS source URL; `emulator` replaces Google's endpoint (see the module comment). */
export function parseGcsUrl(raw: string, emulator?: string): GcsLocation {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new CdiError(ErrorCodes.InvalidArgument, `invalid GCS URL ${redactUrl(raw)}`, {
      cause: err,
    });
  }
  const override = emulator === undefined || emulator === '' ? undefined : emulatorOrigin(emulator);
  if (url.protocol === 'gs:') {
    if (url.hostname === '') throw invalid(raw, 'no bucket');
    const object = decodeSegments(url.pathname.replace(/^\/+/, ''), raw);
    if (object === '') throw invalid(raw, 'no object');
    return { endpoint: override ?? GCS_DEFAULT_ENDPOINT, bucket: url.hostname, object };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(raw, 'not gs://, http:// or https://');
  }
  const google = GOOGLE_HOSTS.has(url.hostname.toLowerCase());
  const endpoint = google ? (override ?? GCS_DEFAULT_ENDPOINT) : url.origin;
  const json = JSON_API_PATH.exec(url.pathname);
  if (json !== null) {
    const object = decodeSegments(json[2] ?? '', raw);
    return { endpoint, bucket: decodeSegments(json[1] ?? '', raw), object };
  }
  return { endpoint, ...bucketAndObject(url.pathname, raw) };
}

/** The XML API URL of an object: `ENDPOINT/BUCKET/OBJECT`, each segment escaped. */
export function gcsObjectUrl(location: GcsLocation): string {
  const object = location.object.split('/').map(encodeURIComponent).join('/');
  return `${location.endpoint}/${encodeURIComponent(location.bucket)}/${object}`;
}
