// SPDX-License-Identifier: Apache-2.0
import { createHash, randomBytes } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../common/logger.js';
import { startTestHttpServer, type TestHttpServer } from '../../../test/helpers/http-server.js';
import { buildDispatcher } from '../http-dispatcher.js';
import { StallBudget } from '../http-limits.js';
import { openBlobReader } from './blob-reader.js';
import { RegistryClient } from './client.js';
import { parseImageReference } from './reference.js';

const BLOB = randomBytes(1 << 20);
const DIGEST = `sha256:${createHash('sha256').update(BLOB).digest('hex')}`;
const BLOB_PATH = `/v2/disk/blobs/${DIGEST}`;
const DROP_AT = 300_000;

describe('openBlobReader (a fake registry that drops connections)', () => {
  let server: TestHttpServer;
  let dispatcher: Dispatcher;

  beforeEach(async () => {
    server = await startTestHttpServer({
      files: { '/v2/': Buffer.from('{}'), [BLOB_PATH]: BLOB },
      dropAfterBytes: DROP_AT,
      etag: false,
    });
    dispatcher = await buildDispatcher();
  });
  afterEach(async () => {
    await dispatcher.destroy();
    await server.close();
  });

  const read = async (maxResumes?: number, idleTimeoutMs = 60_000): Promise<Buffer> => {
    const client = new RegistryClient({
      ref: parseImageReference(`docker://127.0.0.1:${server.port}/disk:v1`),
      dispatcher,
      insecure: true,
      logger: silentLogger,
    });
    const reader = openBlobReader({
      client,
      digest: DIGEST,
      size: BLOB.length,
      signal: new AbortController().signal,
      logger: silentLogger,
      ...(maxResumes === undefined ? {} : { maxResumes }),
      budget: new StallBudget({ idleTimeoutMs, stallBudgetMs: 60_000 }),
    });
    const chunks: Buffer[] = [];
    for await (const c of reader) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };

  const blobGets = (): (string | undefined)[] => {
    const out: (string | undefined)[] = [];
    for (const r of server.requests) {
      const range: unknown = r.headers['range'];
      if (r.url === BLOB_PATH) out.push(typeof range === 'string' ? range : undefined);
    }
    return out;
  };

  it.each([
    { what: 'a Range request (206)', ranges: true },
    { what: 'a whole 200 body whose head is skipped', ranges: false },
  ])('resumes after a drop with $what', async ({ ranges }) => {
    server.options.ranges = ranges;
    const got = await read();
    expect(got.equals(BLOB)).toBe(true);
    expect(blobGets()).toEqual([undefined, `bytes=${DROP_AT}-`]);
  });

  it('cuts a stalled connection after the idle timeout and resumes', async () => {
    delete server.options.dropAfterBytes;
    server.options.stallAfterBytes = DROP_AT;
    const got = await read(undefined, 300);
    expect(got.equals(BLOB)).toBe(true);
    expect(blobGets()).toEqual([undefined, `bytes=${DROP_AT}-`]);
  });

  it('fails with CDI_SOURCE_STALLED once a blob that stalls on every resume spent the budget', async () => {
    delete server.options.dropAfterBytes;
    const client = new RegistryClient({
      ref: parseImageReference(`docker://127.0.0.1:${server.port}/disk:v1`),
      dispatcher,
      insecure: true,
      logger: silentLogger,
    });
    // The ping runs first, under the client's own (default) limits: only the blob stalls.
    await client.ping(new AbortController().signal);
    server.options.stallAfterBytes = 0; // headers, then nothing, on every GET
    server.options.stallTimes = Infinity;
    const reader = openBlobReader({
      client,
      digest: DIGEST,
      size: BLOB.length,
      signal: new AbortController().signal,
      logger: silentLogger,
      maxResumes: 1000,
      budget: new StallBudget({ idleTimeoutMs: 100, stallBudgetMs: 500 }),
    });
    const err = await (async () => {
      try {
        for await (const _c of reader);
      } catch (e) {
        return e as { code?: unknown; message: string };
      }
      throw new Error('expected a failure');
    })();
    expect(err.code).toBe('CDI_SOURCE_STALLED');
    expect(err.message).toMatch(
      /^docker:\/\/127\.0\.0\.1:\d+\/disk:v1 stalled: .* without progress \(\d+ stalls?; idle timeout 100 ms, stall budget 500 ms\); last: no data from registry blob .* for \d+ ms$/,
    );
    expect(blobGets().length).toBeGreaterThan(1);
  });

  it('gives up after the allowed resumes with the network error', async () => {
    server.options.dropTimes = 10;
    await expect(read(1)).rejects.toMatchObject({
      code: expect.stringMatching(/^UND_ERR/) as unknown,
    });
    expect(blobGets()).toHaveLength(2);
  });
});
