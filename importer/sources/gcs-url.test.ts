// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';

import { errorCode } from '../../common/errors.js';
import { emulatorOrigin, gcsObjectUrl, parseGcsUrl } from './gcs-url.js';

describe('parseGcsUrl', () => {
  it.each([
    {
      url: 'gs://bucket/disk.img',
      emulator: undefined,
      want: { endpoint: 'https://storage.googleapis.com', bucket: 'bucket', object: 'disk.img' },
    },
    {
      url: 'gs://bucket/dir/sub/disk%20one.qcow2',
      emulator: undefined,
      want: {
        endpoint: 'https://storage.googleapis.com',
        bucket: 'bucket',
        object: 'dir/sub/disk one.qcow2',
      },
    },
    {
      url: 'gs://bucket/disk.img',
      emulator: '127.0.0.1:4443',
      want: { endpoint: 'http://127.0.0.1:4443', bucket: 'bucket', object: 'disk.img' },
    },
    {
      url: 'https://storage.googleapis.com/bucket/a/b.img',
      emulator: 'https://gcs.local:8443',
      want: { endpoint: 'https://gcs.local:8443', bucket: 'bucket', object: 'a/b.img' },
    },
    {
      url: 'https://storage.cloud.google.com/bucket/b.img',
      emulator: undefined,
      want: { endpoint: 'https://storage.googleapis.com', bucket: 'bucket', object: 'b.img' },
    },
    {
      url: 'http://10.0.0.5:9000/bucket/b.img',
      emulator: '127.0.0.1:1',
      want: { endpoint: 'http://10.0.0.5:9000', bucket: 'bucket', object: 'b.img' },
    },
    {
      url: 'https://storage.googleapis.com/storage/v1/b/bucket/o/dir%2Fb.img?alt=media',
      emulator: undefined,
      want: { endpoint: 'https://storage.googleapis.com', bucket: 'bucket', object: 'dir/b.img' },
    },
    {
      url: 'https://storage.googleapis.com/download/storage/v1/b/bucket/o/b.img?alt=media',
      emulator: undefined,
      want: { endpoint: 'https://storage.googleapis.com', bucket: 'bucket', object: 'b.img' },
    },
  ])('$url (emulator $emulator)', ({ url, emulator, want }) => {
    expect(parseGcsUrl(url, emulator)).toEqual(want);
  });

  it.each([
    ['gs://bucket', /no object/],
    ['gs://bucket/', /no object/],
    ['https://storage.googleapis.com/bucket', /no object/],
    ['https://storage.googleapis.com/', /no bucket/],
    ['ftp://host/bucket/o', /not gs:\/\/, http:\/\/ or https:\/\//],
    ['not a url', /invalid GCS URL/],
    ['gs://bucket/%zz', /bad escape/],
  ])('refuses %s', (url, message) => {
    let thrown: unknown;
    try {
      parseGcsUrl(url);
    } catch (err) {
      thrown = err;
    }
    expect(errorCode(thrown)).toBe('CDI_INVALID_ARGUMENT');
    expect(String(thrown)).toMatch(message);
  });

  it('refuses an emulator that is not http(s)', () => {
    expect(() => emulatorOrigin('ftp://h:1')).toThrow(/must be http\(s\)/);
  });
});

describe('gcsObjectUrl', () => {
  it('escapes each segment and keeps the slashes of the object name', () => {
    expect(
      gcsObjectUrl({ endpoint: 'http://127.0.0.1:1', bucket: 'b', object: 'dir/a b?.img' }),
    ).toBe('http://127.0.0.1:1/b/dir/a%20b%3F.img');
  });
});
