// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { errorCode } from '../../common/errors.js';
import { quoteName, splitEntryName } from './entry-name.js';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return errorCode(err);
  }
}

describe('splitEntryName', () => {
  it.each([
    { raw: 'a', parts: ['a'] },
    { raw: './a/b', parts: ['a', 'b'] },
    { raw: 'a//b/./c/', parts: ['a', 'b', 'c'] },
    { raw: '.', parts: [] },
    { raw: './', parts: [] },
    { raw: '..\\evil', parts: ['..\\evil'] },
    { raw: '...', parts: ['...'] },
    { raw: 'a..b/c', parts: ['a..b', 'c'] },
  ])('$raw → $parts', ({ raw, parts }) => {
    expect(splitEntryName(raw, raw)).toEqual(parts);
  });

  it.each([
    { raw: '/etc/passwd', code: 'CDI_ARCHIVE_PATH_ESCAPE' },
    { raw: '//etc', code: 'CDI_ARCHIVE_PATH_ESCAPE' },
    { raw: '..', code: 'CDI_ARCHIVE_PATH_ESCAPE' },
    { raw: '../x', code: 'CDI_ARCHIVE_PATH_ESCAPE' },
    { raw: 'a/../b', code: 'CDI_ARCHIVE_PATH_ESCAPE' },
    { raw: 'a/b/..', code: 'CDI_ARCHIVE_PATH_ESCAPE' },
    { raw: './../x', code: 'CDI_ARCHIVE_PATH_ESCAPE' },
    { raw: '', code: 'CDI_ARCHIVE_INVALID' },
    { raw: 'a\0b', code: 'CDI_ARCHIVE_INVALID' },
    { raw: 'x'.repeat(256), code: 'CDI_ARCHIVE_INVALID' },
    { raw: 'd/'.repeat(2048), code: 'CDI_ARCHIVE_INVALID' },
  ])('refuses $raw with $code', ({ raw, code }) => {
    expect(codeOf(() => splitEntryName(raw, raw))).toBe(code);
  });

  it('quotes names with escaped control bytes, shortened', () => {
    expect(quoteName('a\x1b[31mb')).toBe('"a\\u001b[31mb"');
    expect(quoteName('x'.repeat(1000)).length).toBeLessThan(200);
  });
});
