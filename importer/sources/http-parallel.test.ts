// SPDX-License-Identifier: Apache-2.0
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { describe, expect, it } from 'vitest';

import { CdiError, errorCode } from '../../common/errors.js';
import { ParallelRangeBody } from './http-parallel.js';
import { consume } from '../../test/helpers/source-read.js';

const DATA = randomBytes(10_000);

/** Segments finish in reverse order of their offsets: later ones are faster. */
function reversedLatency(calls: Array<[number, number]>) {
  return async (offset: number, length: number, signal: AbortSignal): Promise<Buffer> => {
    calls.push([offset, length]);
    await sleep(Math.max(1, 30 - offset / 500), undefined, { signal });
    return DATA.subarray(offset, offset + length);
  };
}

describe('ParallelRangeBody', () => {
  it.each([
    { what: 'segments that divide the length', segmentBytes: 1_000, connections: 3 },
    { what: 'a short last segment', segmentBytes: 3_000, connections: 2 },
    { what: 'one connection', segmentBytes: 4_096, connections: 1 },
  ])(
    'emits every segment in order with $what, whatever order they finish in',
    async ({ segmentBytes, connections }) => {
      const calls: Array<[number, number]> = [];
      const body = new ParallelRangeBody({
        length: DATA.length,
        segmentBytes,
        connections,
        fetchSegment: reversedLatency(calls),
        signal: new AbortController().signal,
      });
      expect((await consume(body)).equals(DATA)).toBe(true);
      expect(calls).toHaveLength(Math.ceil(DATA.length / segmentBytes));
      expect(calls.reduce((n, [, l]) => n + l, 0)).toBe(DATA.length);
    },
  );

  it('uses a pre-read first segment and never fetches it again', async () => {
    const calls: Array<[number, number]> = [];
    const body = new ParallelRangeBody({
      length: DATA.length,
      segmentBytes: 4_000,
      connections: 2,
      first: DATA.subarray(0, 4_000),
      fetchSegment: reversedLatency(calls),
      signal: new AbortController().signal,
    });
    expect((await consume(body)).equals(DATA)).toBe(true);
    expect(calls.map(([o]) => o)).toEqual([4_000, 8_000]);
  });

  it('fails with the error of the first failing segment', async () => {
    const body = new ParallelRangeBody({
      length: DATA.length,
      segmentBytes: 1_000,
      connections: 4,
      fetchSegment: async (offset, length) => {
        await sleep(1);
        if (offset === 3_000) throw new CdiError('CDI_RESUME_FAILED', 'content changed');
        return DATA.subarray(offset, offset + length);
      },
      signal: new AbortController().signal,
    });
    const got: Buffer[] = [];
    await expect(
      (async () => {
        for await (const c of body) got.push(c as Buffer);
      })(),
    ).rejects.toMatchObject({ code: 'CDI_RESUME_FAILED' });
    expect(Buffer.concat(got).equals(DATA.subarray(0, 3_000))).toBe(true);
  });

  it('aborts the segments in flight when the signal aborts', async () => {
    const ac = new AbortController();
    const aborted: number[] = [];
    const body = new ParallelRangeBody({
      length: DATA.length,
      segmentBytes: 1_000,
      connections: 2,
      fetchSegment: (offset, _length, signal) =>
        new Promise<Buffer>((_resolve, reject) => {
          signal.addEventListener('abort', () => {
            aborted.push(offset);
            reject(new Error('aborted'));
          });
        }),
      signal: ac.signal,
    });
    const done = consume(body).catch((err: unknown) => errorCode(err));
    ac.abort();
    expect(await done).toBe('CDI_ABORTED');
    expect(aborted.sort()).toEqual([0, 1_000]);
  });
});
