// SPDX-License-Identifier: Apache-2.0
/**
 * S3Source against a real S3-protocol server (s3rver) on 127.0.0.1: endpoint URLs (path-style),
 * `s3://` with a custom endpoint, HeadObject/GetObject/ranged GetObject, errors, TLS with a CA
 * generated here, and a connection cut mid-body by a TCP relay (the stream must resume).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { CdiError } from '../../common/errors.js';
import { S3Source, type S3SourceOptions } from '../../importer/sources/s3.js';
import { createTestTls, type TestTls } from '../helpers/tls.js';
import { consume } from '../helpers/source-read.js';

/** The part of s3rver's API used here (it ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;

const DATA = randomBytes(2 * 1024 * 1024 + 77);
const KEY = 'images/disk.img';
// s3rver's built-in account.
const CREDS = { accessKeyId: 'S3RVER', secretKey: 'S3RVER' } as const;

interface RunningS3 {
  readonly server: S3rverInstance;
  readonly endpoint: string;
  readonly dir: string;
}

async function startS3(tls?: TestTls): Promise<RunningS3> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cdi-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: [{ name: 'bucket' }],
    ...(tls === undefined ? {} : { key: tls.keyPem, cert: tls.certPem }),
  });
  const { port } = await server.run();
  const endpoint = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;
  if (tls === undefined) {
    const client = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: CREDS.accessKeyId, secretAccessKey: CREDS.secretKey },
    });
    await client.send(new PutObjectCommand({ Bucket: 'bucket', Key: KEY, Body: DATA }));
    client.destroy();
  }
  return { server, endpoint, dir };
}

async function stopS3(s: RunningS3): Promise<void> {
  await s.server.close();
  await rm(s.dir, { recursive: true, force: true });
}

async function failure(p: Promise<unknown>): Promise<CdiError> {
  try {
    await p;
  } catch (err) {
    return err as CdiError;
  }
  throw new Error('expected a failure');
}

async function withSource<T>(
  options: S3SourceOptions,
  fn: (s: S3Source) => Promise<T>,
): Promise<T> {
  const src = new S3Source({ retryDelayMs: 10, ...options });
  try {
    return await fn(src);
  } finally {
    await src.close();
  }
}

/** A TCP relay that cuts the client connection once `cutAfter` bytes went downstream (once). */
async function startCuttingRelay(
  target: string,
  cutAfter: number,
): Promise<{ endpoint: string; cuts: () => number; close: () => Promise<void> }> {
  const { hostname, port } = new URL(target);
  let down = 0;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const up = connect(Number(port), hostname);
    sockets.add(client).add(up);
    client.pipe(up);
    up.on('data', (chunk: Buffer) => {
      if (cuts === 0 && down + chunk.length > cutAfter) {
        client.write(chunk.subarray(0, Math.max(0, cutAfter - down)), () => client.destroy());
        down = cutAfter;
        cuts += 1;
        up.destroy();
        return;
      }
      down += chunk.length;
      client.write(chunk);
    });
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cuts: () => cuts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('S3Source against s3rver', () => {
  let s3: RunningS3;
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await stopS3(s3);
  });

  it.each([
    { what: 'a path-style endpoint URL', options: () => ({ url: `${s3.endpoint}/bucket/${KEY}` }) },
    {
      what: 's3://bucket/key with a custom endpoint',
      options: () => ({ url: `s3://bucket/${KEY}`, endpoint: s3.endpoint }),
    },
  ])('reads $what: info, stream and ranges', async ({ options }) => {
    await withSource({ ...options(), ...CREDS }, async (src) => {
      const signal = new AbortController().signal;
      const info = await src.info(signal);
      expect(info).toMatchObject({
        length: DATA.length,
        randomAccess: true,
        displayName: `s3://bucket/${KEY}`,
      });
      expect((await consume(await src.stream(signal))).equals(DATA)).toBe(true);
      expect((await src.readRange(1000, 4096, signal)).equals(DATA.subarray(1000, 5096))).toBe(
        true,
      );
      expect(
        (await src.readRange(DATA.length - 3, 3, signal)).equals(DATA.subarray(DATA.length - 3)),
      ).toBe(true);
    });
  });

  it.each([
    {
      what: 'a missing key',
      url: () => `${s3.endpoint}/bucket/nope.img`,
      creds: CREDS,
      message: /not found/,
    },
    {
      what: 'a missing bucket',
      url: () => `${s3.endpoint}/nobucket/${KEY}`,
      creds: CREDS,
      message: /not found/,
    },
    {
      what: 'an unknown access key (s3rver does not check SigV4 secrets)',
      url: () => `${s3.endpoint}/bucket/${KEY}`,
      creds: { accessKeyId: 'NOBODY', secretKey: 'wrong' },
      message: /access denied/,
    },
  ])('fails with CDI_S3_FAILED on $what', async ({ url, creds, message }) => {
    await withSource({ url: url(), ...creds }, async (src) => {
      const err = await failure(src.info(new AbortController().signal));
      expect(err.code).toBe('CDI_S3_FAILED');
      expect(err.message).toMatch(message);
      expect(err.message).toContain('s3://');
    });
  });

  it('GetObject of a missing key fails with a clear NoSuchKey message', async () => {
    await withSource({ url: `${s3.endpoint}/bucket/missing.img`, ...CREDS }, async (src) => {
      const err = await failure(src.stream(new AbortController().signal));
      expect(err.code).toBe('CDI_S3_FAILED');
      expect(err.message).toBe('GetObject s3://bucket/missing.img: object not found (NoSuchKey)');
    });
  });

  it('cancels with the signal', async () => {
    await withSource({ url: `${s3.endpoint}/bucket/${KEY}`, ...CREDS }, async (src) => {
      const ac = new AbortController();
      ac.abort(new Error('stop'));
      const err = await failure(src.info(ac.signal));
      expect(err.code).toBe('CDI_ABORTED');
    });
  });

  it('cancels a running object stream with the signal', async () => {
    await withSource({ url: `${s3.endpoint}/bucket/${KEY}`, ...CREDS }, async (src) => {
      const ac = new AbortController();
      await src.info(ac.signal);
      const body = await src.stream(ac.signal);
      body.once('data', () => ac.abort(new Error('user cancelled')));
      const err = await failure(consume(body));
      expect(err.code).toBe('CDI_ABORTED');
    });
  });

  it('resumes a GetObject body cut mid-way with a ranged GetObject, byte-identical', async () => {
    const relay = await startCuttingRelay(s3.endpoint, 700_000);
    try {
      await withSource({ url: `${relay.endpoint}/bucket/${KEY}`, ...CREDS }, async (src) => {
        const signal = new AbortController().signal;
        await src.info(signal);
        const got = await consume(await src.stream(signal));
        expect(relay.cuts()).toBe(1);
        expect(got.equals(DATA)).toBe(true);
      });
    } finally {
      await relay.close();
    }
  });
});

describe('S3Source over TLS', () => {
  let tls: TestTls;
  let s3: RunningS3;
  beforeAll(async () => {
    tls = await createTestTls();
    s3 = await startS3(tls);
  });
  afterAll(async () => {
    await stopS3(s3);
    await tls.cleanup();
  });

  it.each([
    {
      what: 'the CA from the cert dir',
      extra: () => ({ certDir: tls.caDir }),
      code: 'CDI_S3_FAILED',
      found: true,
    },
    {
      what: 'insecureTls',
      extra: () => ({ insecureTls: true }),
      code: 'CDI_S3_FAILED',
      found: true,
    },
    { what: 'no CA (verification fails)', extra: () => ({}), code: 'CDI_S3_FAILED', found: false },
  ])('talks to an https endpoint with $what', async ({ extra, code, found }) => {
    // The bucket is empty: a trusted connection reaches S3 and gets NoSuchKey; an untrusted one fails in TLS.
    await withSource(
      { url: `${s3.endpoint}/bucket/${KEY}`, ...CREDS, maxRetries: 0, ...extra() },
      async (src) => {
        const err = await failure(src.info(new AbortController().signal));
        expect(err.code).toBe(code);
        if (found) expect(err.message).toMatch(/not found/);
        else expect(err.message).not.toMatch(/not found/);
      },
    );
  });
});
