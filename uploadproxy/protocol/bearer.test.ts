// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { parseBearer } from './bearer.js';
import { uploadModeOf } from './paths.js';
import { parseListen } from './listen.js';

describe('parseBearer', () => {
  it.each([
    { what: 'a JWT', header: 'Bearer aa.bb-_.cc', token: 'aa.bb-_.cc' },
    { what: 'any case and spaces', header: 'bearer   tok/en+=', token: 'tok/en+=' },
  ])('accepts $what', ({ header, token }) => {
    expect(parseBearer(header)).toBe(token);
  });

  it.each([
    { what: 'a missing header', header: undefined },
    { what: 'an empty header', header: '' },
    { what: 'basic auth', header: 'Basic dXNlcg==' },
    { what: 'no token', header: 'Bearer ' },
    { what: 'two tokens', header: 'Bearer a b' },
    { what: 'odd characters', header: 'Bearer a<b>' },
  ])('refuses $what with 400', ({ header }) => {
    expect(() => parseBearer(header)).toThrow(
      expect.objectContaining({ code: 'CDI_UPLOAD_TOKEN_INVALID', httpStatus: 400 }) as Error,
    );
  });
});

describe('uploadModeOf', () => {
  it.each([
    { what: 'sync', url: '/v1beta1/upload', mode: { async: false, form: false, archive: false } },
    {
      what: 'async alpha',
      url: '/v1alpha1/upload-async',
      mode: { async: true, form: false, archive: false },
    },
    {
      what: 'form',
      url: '/v1beta1/upload-form?x=1',
      mode: { async: false, form: true, archive: false },
    },
    {
      what: 'form async',
      url: '/v1beta1/upload-form-async',
      mode: { async: true, form: true, archive: false },
    },
    {
      what: 'archive',
      url: '/v1beta1/upload-archive',
      mode: { async: false, form: false, archive: true },
    },
    { what: 'unknown', url: '/v1beta1/uploads', mode: undefined },
    { what: 'other version', url: '/v2/upload', mode: undefined },
    { what: 'healthz', url: '/healthz', mode: undefined },
  ])('$what', ({ url, mode }) => {
    expect(uploadModeOf(url)).toEqual(mode);
  });
});

describe('parseListen', () => {
  it.each([
    { what: 'v4', text: '0.0.0.0:8443', out: { host: '0.0.0.0', port: 8443 } },
    { what: 'v6', text: '[::1]:0', out: { host: '::1', port: 0 } },
  ])('$what', ({ text, out }) => {
    expect(parseListen(text)).toEqual(out);
  });
  it.each(['8443', ':8443', 'host:', 'host:99999', 'host:x'])('refuses %s', (text) => {
    expect(() => parseListen(text)).toThrow(/not host:port/);
  });
});
