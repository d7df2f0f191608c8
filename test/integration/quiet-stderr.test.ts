// SPDX-License-Identifier: Apache-2.0
/**
 * No verb prints a runtime warning in normal use: `cdi import` from S3 (s3rver), HTTP and a
 * registry (docker-registry), each on 127.0.0.1, leaves stderr empty on success (the AWS SDK's
 * NodeVersionSupportWarning, Node's deprecation warnings and experimental-feature notices would
 * all land there).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCdi } from '../helpers/cdi-cli.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import {
  pushContainerDisk,
  startRegistry,
  type RegistryServer,
} from '../helpers/registry-server.js';

/** The part of s3rver's API used here (it ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;
// s3rver's built-in account.
const S3_KEY = 'S3RVER';

const DISK = randomBytes(3 * 1024 * 1024);
let dir: string;
let http: TestHttpServer;
let s3: S3rverInstance;
let s3Endpoint: string;
let registry: RegistryServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cdi-quiet-'));
  const diskFile = join(dir, 'disk.img');
  await writeFile(diskFile, DISK);
  http = await startTestHttpServer({ files: { '/disk.img': DISK } });
  s3 = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(dir, 's3'),
    configureBuckets: [{ name: 'bucket' }],
  });
  s3Endpoint = `http://127.0.0.1:${(await s3.run()).port}`;
  const client = new S3Client({
    endpoint: s3Endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_KEY },
  });
  await client.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'disk.img', Body: DISK }));
  client.destroy();
  registry = await startRegistry();
  await pushContainerDisk({ registry, target: 'disk:v1', diskFile, workDir: dir });
}, 120_000);

afterAll(async () => {
  await http?.close();
  await s3?.close();
  await registry?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('cdi import prints nothing on stderr when it succeeds', () => {
  it.each([
    { source: 'HTTP', args: () => ['--source', `${http.origin}/disk.img`] },
    {
      source: 'S3',
      args: () => [
        '--source',
        `${s3Endpoint}/bucket/disk.img`,
        '--source-kind',
        's3',
        '--access-key-id',
        S3_KEY,
        '--secret-key',
        S3_KEY,
      ],
    },
    {
      source: 'a registry',
      args: () => ['--source', `docker://${registry.host}/disk:v1`, '--insecure-tls'],
    },
  ])('from $source', async ({ source, args }) => {
    const dest = join(dir, `${source.replace(/\W/g, '-')}.img`);
    const run = await runCdi(['import', ...args(), '--dest', dest, '--size', '64Mi']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect((await readFile(dest)).subarray(0, DISK.length).equals(DISK)).toBe(true);
  });
});
