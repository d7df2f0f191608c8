// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';

import { errorCode } from '../../common/errors.js';

import { parseS3Url, type S3Location } from './s3-url.js';

describe('parseS3Url', () => {
  it.each<{ what: string; url: string; endpoint?: string; want: S3Location }>([
    {
      what: 's3://bucket/key on AWS',
      url: 's3://bucket/dir/disk.img',
      want: {
        bucket: 'bucket',
        key: 'dir/disk.img',
        endpoint: undefined,
        region: undefined,
        forcePathStyle: false,
      },
    },
    {
      what: 's3://bucket/key with a custom endpoint (path-style)',
      url: 's3://bucket/disk.img',
      endpoint: 'http://minio:9000',
      want: {
        bucket: 'bucket',
        key: 'disk.img',
        endpoint: 'http://minio:9000',
        region: undefined,
        forcePathStyle: true,
      },
    },
    {
      what: 'a MinIO endpoint URL (path-style, CDI tests)',
      url: 'http://minio.cdi:9000/bucket/images/cirros.qcow2',
      want: {
        bucket: 'bucket',
        key: 'images/cirros.qcow2',
        endpoint: 'http://minio.cdi:9000',
        region: undefined,
        forcePathStyle: true,
      },
    },
    {
      what: 'an IP endpoint with a one-segment key',
      url: 'http://10.0.0.1:9000/bucket/disk.img',
      want: {
        bucket: 'bucket',
        key: 'disk.img',
        endpoint: 'http://10.0.0.1:9000',
        region: undefined,
        forcePathStyle: true,
      },
    },
    {
      what: 'AWS virtual-hosted with a region',
      url: 'https://my-bucket.s3.eu-west-1.amazonaws.com/a/b.img',
      want: {
        bucket: 'my-bucket',
        key: 'a/b.img',
        endpoint: undefined,
        region: 'eu-west-1',
        forcePathStyle: false,
      },
    },
    {
      what: 'AWS virtual-hosted, dotted bucket, no region',
      url: 'https://my.bucket.s3.amazonaws.com/b.img',
      want: {
        bucket: 'my.bucket',
        key: 'b.img',
        endpoint: undefined,
        region: undefined,
        forcePathStyle: false,
      },
    },
    {
      what: 'AWS path-style with a region',
      url: 'https://s3.us-west-2.amazonaws.com/bucket/b.img',
      want: {
        bucket: 'bucket',
        key: 'b.img',
        endpoint: undefined,
        region: 'us-west-2',
        forcePathStyle: false,
      },
    },
    {
      what: 'a custom virtual-hosted endpoint (one path segment)',
      url: 'https://bucket.objects.example.com:8443/disk.img',
      want: {
        bucket: 'bucket',
        key: 'disk.img',
        endpoint: 'https://objects.example.com:8443',
        region: undefined,
        forcePathStyle: false,
      },
    },
    {
      what: 'an escaped key',
      url: 'http://minio:9000/bucket/my%20disk.img',
      want: {
        bucket: 'bucket',
        key: 'my disk.img',
        endpoint: 'http://minio:9000',
        region: undefined,
        forcePathStyle: true,
      },
    },
  ])('$what', ({ url, endpoint, want }) => {
    expect(parseS3Url(url, endpoint)).toEqual(want);
  });

  it.each([
    { what: 'no key', url: 's3://bucket' },
    { what: 'only a bucket on an endpoint', url: 'http://minio:9000/bucket' },
    { what: 'another scheme', url: 'ftp://host/bucket/key' },
    { what: 'garbage', url: '::' },
  ])('refuses $what with CDI_INVALID_ARGUMENT', ({ url }) => {
    expect(thrownCode(() => parseS3Url(url))).toBe('CDI_INVALID_ARGUMENT');
  });
});

function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return errorCode(err);
  }
  return undefined;
}
