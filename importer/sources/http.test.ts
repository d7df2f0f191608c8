// SPDX-License-Identifier: Apache-2.0
/**
 * Unit tests of HttpSource with undici's MockAgent (no network); the real-server behaviour
 * (resume, TLS, proxies) is in test/integration/source-http.test.ts.
 */
import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

import { errorCode } from '../../common/errors.js';

import { HttpSource } from './http.js';

let agent: MockAgent;

function mock(): MockAgent {
  agent = new MockAgent();
  agent.disableNetConnect();
  return agent;
}

afterEach(async () => {
  await agent.close();
});

describe('HttpSource (MockAgent)', () => {
  it.each([
    { what: 'an unparsable URL', url: 'http://' },
    { what: 'another scheme', url: 'ftp://example.com/disk.img' },
  ])('refuses $what in the constructor with CDI_INVALID_ARGUMENT', ({ url }) => {
    mock();
    expect(thrownCode(() => new HttpSource({ url, dispatcher: agent }))).toBe(
      'CDI_INVALID_ARGUMENT',
    );
  });

  it('does no I/O in the constructor and takes basic auth from the URL userinfo', async () => {
    const pool = mock().get('http://images.example');
    pool
      .intercept({
        path: '/disk.img',
        method: 'HEAD',
        headers: {
          'user-agent': 'cdi-golang-importer',
          authorization: 'Basic YWRtaW46cGFzc3dvcmQ=',
        },
      })
      .reply(200, '', {
        headers: { 'content-length': '1234', 'accept-ranges': 'bytes', etag: '"e1"' },
      });
    const src = new HttpSource({
      url: 'http://admin:password@images.example/disk.img',
      dispatcher: agent,
    });
    expect(agent.pendingInterceptors()).toHaveLength(1);
    const info = await src.info(new AbortController().signal);
    expect(info).toEqual({
      length: 1234,
      randomAccess: true,
      displayName: 'http://redacted:redacted@images.example/disk.img',
    });
    agent.assertNoPendingInterceptors();
    await src.close();
  });

  it('falls back to a ranged GET when HEAD is refused and reads the total from Content-Range', async () => {
    const pool = mock().get('http://images.example');
    pool.intercept({ path: '/disk.img', method: 'HEAD' }).reply(405, '');
    pool
      .intercept({ path: '/disk.img', method: 'GET', headers: { range: 'bytes=0-0' } })
      .reply(206, 'x', { headers: { 'content-range': 'bytes 0-0/5000' } });
    const src = new HttpSource({ url: 'http://images.example/disk.img', dispatcher: agent });
    expect(await src.info(new AbortController().signal)).toMatchObject({
      length: 5000,
      randomAccess: true,
    });
    await src.close();
  });

  it('says no random access without Accept-Ranges', async () => {
    mock()
      .get('http://images.example')
      .intercept({ path: '/disk.img', method: 'HEAD' })
      .reply(200, '', { headers: { 'content-length': '10' } });
    const src = new HttpSource({ url: 'http://images.example/disk.img', dispatcher: agent });
    expect(await src.info(new AbortController().signal)).toMatchObject({
      length: 10,
      randomAccess: false,
    });
    await expect(src.readRange(0, 1, new AbortController().signal)).rejects.toMatchObject({
      code: 'CDI_INTERNAL',
    });
    await src.close();
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
