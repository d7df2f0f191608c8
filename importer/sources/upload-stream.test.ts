// SPDX-License-Identifier: Apache-2.0
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { UploadStreamSource } from './upload-stream.js';

describe('UploadStreamSource', () => {
  it.each([
    { what: 'a known length', length: 4, expected: 4 },
    { what: 'a chunked upload', length: undefined, expected: undefined },
  ])('info reports $what, sequential only', async ({ length, expected }) => {
    const source = new UploadStreamSource({
      stream: Readable.from([Buffer.from('abcd')]),
      ...(length === undefined ? {} : { length }),
    });
    expect(await source.info(AbortSignal.timeout(1000))).toEqual({
      length: expected,
      randomAccess: false,
      displayName: 'upload',
    });
    expect('readRange' in source).toBe(false);
  });

  it('hands out the stream once; close destroys an unread one', async () => {
    const stream = Readable.from([Buffer.from('abcd')]);
    const source = new UploadStreamSource({ stream });
    const signal = AbortSignal.timeout(1000);
    expect(await source.stream(signal)).toBe(stream);
    await expect(source.stream(signal)).rejects.toMatchObject({ code: 'CDI_INTERNAL' });
    await source.close();
    await source.close();
    expect(stream.destroyed).toBe(true);
  });

  it('respects an aborted signal', async () => {
    const source = new UploadStreamSource({ stream: Readable.from([]) });
    await expect(source.info(AbortSignal.abort())).rejects.toThrow();
  });
});
