// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { escapeHtml, httpStatusOf } from './status.js';

describe('httpStatusOf', () => {
  it.each([
    {
      what: 'explicit status wins',
      err: new CdiError(ErrorCodes.UploadTokenInvalid, 'x', { httpStatus: 400 }),
      status: 400,
    },
    { what: 'invalid token', err: new CdiError(ErrorCodes.UploadTokenInvalid, 'x'), status: 401 },
    { what: 'not ready', err: new CdiError(ErrorCodes.UploadNotReady, 'x'), status: 503 },
    { what: 'size validation', err: new CdiError(ErrorCodes.SizeValidation, 'x'), status: 400 },
    { what: 'ENOSPC', err: Object.assign(new Error('full'), { code: 'ENOSPC' }), status: 400 },
    {
      what: 'wrapped no capacity',
      err: new CdiError(ErrorCodes.Internal, 'x', { cause: new CdiError(ErrorCodes.NoSpace, 'y') }),
      status: 400,
    },
    { what: 'bad image', err: new CdiError(ErrorCodes.ImageInvalid, 'x'), status: 400 },
    { what: 'shared metadata', err: new CdiError(ErrorCodes.ImageOverlap, 'x'), status: 400 },
    { what: 'anything else', err: new Error('boom'), status: 500 },
    { what: 'a non-error', err: 'boom', status: 500 },
  ])('$what → $status', ({ err, status }) => {
    expect(httpStatusOf(err)).toBe(status);
  });
});

describe('escapeHtml', () => {
  it.each([
    { what: 'plain', text: 'PVC disk', out: 'PVC disk' },
    {
      what: 'tags and quotes',
      text: `<b a="1">'x'</b> & y`,
      out: '&lt;b a=&#34;1&#34;&gt;&#39;x&#39;&lt;/b&gt; &amp; y',
    },
  ])('$what', ({ text, out }) => {
    expect(escapeHtml(text)).toBe(out);
  });
});
