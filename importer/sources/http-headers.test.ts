// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';

import { errorCode } from '../../common/errors.js';

import {
  basicAuthorization,
  parseContentRange,
  parseExtraHeaders,
  redactUrl,
  strongEtag,
} from './http-headers.js';

describe('parseExtraHeaders', () => {
  it.each([
    { what: 'a simple header', line: 'X-Token: abc', want: ['x-token', 'abc'] },
    {
      what: 'a value with colons (split at the first one)',
      line: 'Authorization: Basic a:b:c',
      want: ['authorization', 'Basic a:b:c'],
    },
    { what: 'no space after the colon', line: 'X-A:1', want: ['x-a', '1'] },
    { what: 'surrounding blanks', line: '  X-B :  two words  ', want: ['x-b', 'two words'] },
    { what: 'an empty value', line: 'X-Empty:', want: ['x-empty', ''] },
  ])('accepts $what', ({ line, want }) => {
    expect(parseExtraHeaders([line])).toEqual([want]);
  });

  it.each([
    { what: 'no colon', line: 'NoColonHere' },
    { what: 'an empty name', line: ': value' },
    { what: 'a name with a space', line: 'Bad Name: v' },
  ])('refuses $what with CDI_INVALID_CONFIG, without echoing the value', ({ line }) => {
    expect(thrownCode(() => parseExtraHeaders([line]))).toBe('CDI_INVALID_CONFIG');
    try {
      parseExtraHeaders([`${line}secretvalue`]);
    } catch (err) {
      expect(String(err)).not.toContain('secretvalue');
    }
  });
});

describe('redactUrl', () => {
  it.each([
    {
      what: 'user and password',
      url: 'https://me:pw@host/x.img',
      want: 'https://redacted:redacted@host/x.img',
    },
    {
      what: 'a presigned query',
      url: 'https://h/x?X-Amz-Signature=abc&a=1',
      want: 'https://h/x?X-Amz-Signature=redacted&a=redacted',
    },
    {
      what: 'a plain URL',
      url: 'http://127.0.0.1:8080/disk.img',
      want: 'http://127.0.0.1:8080/disk.img',
    },
    { what: 'garbage', url: 'not a url', want: '<invalid url>' },
  ])('redacts $what', ({ url, want }) => {
    expect(redactUrl(url)).toBe(want);
  });
});

describe('parseContentRange', () => {
  it.each([
    { what: 'a full range', value: 'bytes 0-99/100', want: { first: 0, last: 99, total: 100 } },
    {
      what: 'an unknown total',
      value: 'bytes 5-9/*',
      want: { first: 5, last: 9, total: undefined },
    },
    { what: 'last before first', value: 'bytes 9-5/100', want: undefined },
    { what: 'last past the total', value: 'bytes 0-100/100', want: undefined },
    { what: 'an unsatisfied range', value: 'bytes */100', want: undefined },
    { what: 'another unit', value: 'items 0-1/2', want: undefined },
    { what: 'a missing header', value: undefined, want: undefined },
  ])('parses $what', ({ value, want }) => {
    expect(parseContentRange(value)).toEqual(want);
  });
});

describe('small helpers', () => {
  it('builds Go-compatible basic auth', () => {
    expect(basicAuthorization('admin', 'password')).toBe('Basic YWRtaW46cGFzc3dvcmQ=');
  });
  it.each([
    { what: 'a strong ETag', etag: '"abc"', want: '"abc"' },
    { what: 'a weak ETag', etag: 'W/"abc"', want: undefined },
    { what: 'no ETag', etag: undefined, want: undefined },
  ])('keeps only strong ETags: $what', ({ etag, want }) => {
    expect(strongEtag(etag === undefined ? {} : { etag })).toBe(want);
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
