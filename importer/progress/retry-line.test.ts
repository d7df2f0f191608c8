// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.js';
import { quietRetryLogger } from './retry-line.js';

function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; writes: string[] } {
  const writes: string[] = [];
  const stream = {
    isTTY,
    columns: 60,
    write: (s: string) => writes.push(s) > 0,
  } as unknown as NodeJS.WriteStream;
  return { stream, writes };
}

describe('quietRetryLogger', () => {
  const retry = (attempt: number) =>
    [
      'GET http://127.0.0.1:1/x failed, retrying',
      { attempt, delayMs: 1000 * 2 ** (attempt - 1), error: 'connect ECONNREFUSED' },
    ] as const;

  it.each([
    {
      what: 'on a terminal: one line rewritten in place, cut to the width',
      tty: true,
      want: [
        '\rGET http://127.0.0.1:1/x failed, retrying (attempt 1, next \x1b[K',
        '\rGET http://127.0.0.1:1/x failed, retrying (attempt 2, next \x1b[K',
        '\r\x1b[K',
      ],
    },
    {
      what: 'elsewhere: the first retry only, as a line',
      tty: false,
      want: [
        'GET http://127.0.0.1:1/x failed, retrying (attempt 1, next try in 1s): connect ECONNREFUSED\n',
      ],
    },
  ])('$what', ({ tty, want }) => {
    const { stream, writes } = fakeStream(tty);
    const lines: string[] = [];
    const base = createLogger({ component: 't', level: 'warn', write: (l) => void lines.push(l) });
    const quiet = quietRetryLogger(base, stream);
    quiet.logger.warn(...retry(1));
    quiet.logger.child({ source: 'http' }).warn(...retry(2));
    quiet.clear();
    expect(writes).toEqual(want);
    expect(lines).toEqual([]);
  });

  it('passes other warnings on', () => {
    const { stream, writes } = fakeStream(true);
    const lines: string[] = [];
    const base = createLogger({ component: 't', level: 'warn', write: (l) => void lines.push(l) });
    quietRetryLogger(base, stream).logger.warn('proxy ignored');
    expect(writes).toEqual([]);
    expect(lines).toHaveLength(1);
  });
});
