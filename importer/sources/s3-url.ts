// SPDX-License-Identifier: Apache-2.0
/**
 * How an S3 source URL names its endpoint, bucket and key (see docs/adr/0004-http-resume.md for
 * the S3 notes). The rules, first match wins:
 *
 * 1. `s3://bucket/key`: AWS (or the `endpoint` option), path-style when an endpoint is given.
 * 2. `http(s)://<bucket>.s3[.-]<region>.amazonaws.com/key` or `<bucket>.s3.amazonaws.com`:
 *    AWS virtual-hosted; the region comes from the host when present.
 * 3. `http(s)://s3[.-]<region>.amazonaws.com/bucket/key`: AWS path-style.
 * 4. Any other `http(s)://host[:port]/bucket/key` (MinIO, Ceph RGW, s3rver; CDI's usual case):
 *    path-style against that endpoint: the first path segment is the bucket.
 * 5. `http(s)://bucket.host.domain/key` whose path has a single segment, on a host name (not an
 *    IP, at least three labels): virtual-hosted against `http(s)://host.domain`.
 */
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { redactUrl } from './http-headers.js';

/** Where an S3 object lives. */
export interface S3Location {
  readonly bucket: string;
  readonly key: string;
  /** Custom endpoint origin (`http://minio:9000`), or undefined for AWS. */
  readonly endpoint: string | undefined;
  /** Region named in the host, if any. */
  readonly region: string | undefined;
  /** Address the bucket in the path (custom endpoints) rather than in the host name. */
  readonly forcePathStyle: boolean;
}

const AWS_VHOST = /^(.+)\.s3(?:[.-]([a-z0-9-]+))?\.amazonaws\.com$/i;
const AWS_PATH = /^s3(?:[.-]([a-z0-9-]+))?\.amazonaws\.com$/i;
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

function decodeKey(pathname: string): string {
  return pathname.split('/').map(decodeURIComponent).join('/');
}

function splitBucketKey(pathname: string, url: string): { bucket: string; key: string } {
  const trimmed = pathname.replace(/^\/+/, '');
  const i = trimmed.indexOf('/');
  const bucket = i < 0 ? trimmed : trimmed.slice(0, i);
  const key = i < 0 ? '' : decodeKey(trimmed.slice(i + 1));
  if (bucket === '' || key === '') {
    throw new CdiError(
      ErrorCodes.InvalidArgument,
      `S3 URL needs a bucket and a key: ${redactUrl(url)}`,
    );
  }
  return { bucket, key };
}

/** Parses an S3 source URL; `endpoint` (CLI/env) overrides the endpoint of `s3://` URLs. */
export function parseS3Url(raw: string, endpoint?: string): S3Location {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new CdiError(ErrorCodes.InvalidArgument, `invalid S3 URL ${redactUrl(raw)}`, {
      cause: err,
    });
  }
  if (url.protocol === 's3:') {
    // `s3://bucket/key` parses with the bucket as the host; `s3:///bucket/key` with it in the path.
    const { bucket: b, key: k } =
      url.hostname === ''
        ? splitBucketKey(url.pathname, raw)
        : { bucket: url.hostname, key: decodeKey(url.pathname.replace(/^\/+/, '')) };
    if (k === '')
      throw new CdiError(ErrorCodes.InvalidArgument, `S3 URL needs a key: ${redactUrl(raw)}`);
    return {
      bucket: b,
      key: k,
      endpoint,
      region: undefined,
      forcePathStyle: endpoint !== undefined,
    };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CdiError(ErrorCodes.InvalidArgument, `not an S3 URL: ${redactUrl(raw)}`);
  }
  const vhost = AWS_VHOST.exec(url.hostname);
  if (vhost !== null) {
    const key = decodeKey(url.pathname.replace(/^\/+/, ''));
    if (key === '')
      throw new CdiError(ErrorCodes.InvalidArgument, `S3 URL needs a key: ${redactUrl(raw)}`);
    return {
      bucket: vhost[1] ?? '',
      key,
      endpoint: undefined,
      region: vhost[2],
      forcePathStyle: false,
    };
  }
  const awsPath = AWS_PATH.exec(url.hostname);
  if (awsPath !== null) {
    return {
      ...splitBucketKey(url.pathname, raw),
      endpoint: undefined,
      region: awsPath[1],
      forcePathStyle: false,
    };
  }
  const segments = url.pathname
    .replace(/^\/+/, '')
    .split('/')
    .filter((s) => s !== '');
  const labels = url.hostname.split('.');
  const isName = !IPV4.test(url.hostname) && !url.hostname.startsWith('[');
  if (segments.length === 1 && isName && labels.length >= 3) {
    const port = url.port === '' ? '' : `:${url.port}`;
    return {
      bucket: labels[0] ?? '',
      key: decodeKey(segments[0] ?? ''),
      endpoint: `${url.protocol}//${labels.slice(1).join('.')}${port}`,
      region: undefined,
      forcePathStyle: false,
    };
  }
  return {
    ...splitBucketKey(url.pathname, raw),
    endpoint: url.origin,
    region: undefined,
    forcePathStyle: true,
  };
}
