// SPDX-License-Identifier: Apache-2.0
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FileSource } from './file.js';
import { consume } from '../../test/helpers/source-read.js';

const DATA = randomBytes(3 * 1024 * 1024 + 5);
let dir: string;
let file: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cdi-filesrc-'));
  file = path.join(dir, 'disk.img');
  await writeFile(file, DATA);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('FileSource', () => {
  it('reports length and localPath, streams every byte and reads ranges', async () => {
    const src = new FileSource({ path: file });
    const signal = new AbortController().signal;
    expect(await src.info(signal)).toEqual({
      length: DATA.length,
      randomAccess: true,
      displayName: file,
      localPath: file,
    });
    expect((await consume(await src.stream(signal))).equals(DATA)).toBe(true);
    expect(
      (await src.readRange(1_000_000, 70_000, signal)).equals(DATA.subarray(1_000_000, 1_070_000)),
    ).toBe(true);
    await expect(src.readRange(DATA.length - 2, 4, signal)).rejects.toMatchObject({
      code: 'CDI_UNEXPECTED_EOF',
    });
    await src.close();
    await src.close();
  });

  it.each([
    { what: 'a missing file', p: () => path.join(dir, 'nope.img'), message: /no such file/ },
    { what: 'a directory', p: () => dir, message: /is a directory/ },
  ])('refuses $what with CDI_INVALID_ARGUMENT', async ({ p, message }) => {
    const src = new FileSource({ path: p() });
    await expect(src.info(new AbortController().signal)).rejects.toMatchObject({
      code: 'CDI_INVALID_ARGUMENT',
      message: expect.stringMatching(message) as unknown,
    });
  });

  it('stops the stream when the signal aborts', async () => {
    const src = new FileSource({ path: file });
    const ac = new AbortController();
    const s = await src.stream(ac.signal);
    ac.abort();
    await expect(consume(s)).rejects.toMatchObject({ name: 'AbortError' });
    await src.close();
  });
});
