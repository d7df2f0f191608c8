// SPDX-License-Identifier: Apache-2.0
/**
 * Stalled registries and S3 servers: a real `docker-registry` and a real s3rver, each behind a
 * loopback relay that lets an answer's headers and a few body bytes through and then goes
 * silent (test/helpers/stalling-relay.ts). With small limits, a source that stalls on every
 * attempt fails with CDI_SOURCE_STALLED once its stall budget is spent, the message naming the
 * stall; a single stall is cut after the idle timeout and the transfer resumes byte for byte.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { errorCode } from '../../common/errors.js';
import type { TransferLimits } from '../../importer/sources/http-limits.js';
import type { DataSource } from '../../importer/sources/types.js';
import { RegistrySource } from '../../importer/sources/registry/source.js';
import { S3Source } from '../../importer/sources/s3.js';
import { runCdi } from '../helpers/cdi-cli.js';
import {
  pushLayout,
  startRegistry,
  writeImageLayout,
  type RegistryServer,
} from '../helpers/registry-server.js';
import {
  startStallingRelay,
  type StallRule,
  type StallingRelay,
} from '../helpers/stalling-relay.js';
import { download } from '../helpers/source-read.js';

const DISK = randomBytes(1024 * 1024 + 333);
const LIMITS = { idleTimeoutMs: 150, stallBudgetMs: 900 } as const;
/** For transfers that must succeed: one stall is cut fast, a loaded machine spends no budget. */
const ROOMY = { idleTimeoutMs: 300, stallBudgetMs: 20_000 } as const;
const KEY = 'images/disk.img';
const CREDS = { accessKeyId: 'S3RVER', secretKey: 'S3RVER' } as const;

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;

let work: string;
let registry: RegistryServer;
let s3: S3rverInstance;
let s3Port: number;
/** Request lines of the layer blob (not the config blob). */
let layerBlob: RegExp;
const relays: StallingRelay[] = [];
const sources: DataSource[] = [];

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'cdi-stall-rs-'));
  registry = await startRegistry();
  const layout = await writeImageLayout(path.join(work, 'layout'), {
    layers: [
      {
        compression: 'none',
        entries: [
          { name: 'disk/', type: 'directory' },
          { name: 'disk/disk.img', data: DISK },
        ],
      },
    ],
  });
  await pushLayout(layout, registry, { target: 'stall:v1' });
  const layer = layout.images[0]?.layers[0]?.digest ?? '';
  layerBlob = new RegExp(`^GET /v2/stall/blobs/${layer} `);
  s3 = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: path.join(work, 's3'),
    configureBuckets: [{ name: 'bucket' }],
  });
  s3Port = (await s3.run()).port;
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${s3Port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: CREDS.accessKeyId, secretAccessKey: CREDS.secretKey },
  });
  await client.send(new PutObjectCommand({ Bucket: 'bucket', Key: KEY, Body: DISK }));
  client.destroy();
});

afterAll(async () => {
  await registry.close();
  await s3.close();
  await rm(work, { recursive: true, force: true });
});

afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

type Kind = 'registry' | 's3';
/** The answers to stall: the image's layer blob (its digest is known once pushed) or a pattern. */
type Answer = 'layer blob' | RegExp;
type Rule = Omit<StallRule, 'request'>;

/** A source of `kind` reached through a relay stalling the answers `on` as `rule` says. */
async function sourceBehind(
  kind: Kind,
  on: Answer,
  rule: Rule,
  limits: TransferLimits = LIMITS,
): Promise<{ src: DataSource; relay: StallingRelay }> {
  const targetPort = kind === 's3' ? s3Port : Number(registry.host.split(':')[1]);
  const request = on === 'layer blob' ? layerBlob : on;
  const relay = await startStallingRelay(targetPort, { ...rule, request });
  relays.push(relay);
  const src =
    kind === 's3'
      ? new S3Source({
          url: `http://${relay.host}/bucket/${KEY}`,
          ...CREDS,
          limits,
          retryDelayMs: 5,
          maxRetries: 1000,
        })
      : new RegistrySource({
          url: `docker://${relay.host}/stall:v1`,
          insecureRegistries: [relay.host],
          transport: { limits },
        });
  sources.push(src);
  return { src, relay };
}

/** A ranged read after info() (S3 random access). */
async function readRange(src: DataSource): Promise<Buffer> {
  const signal = new AbortController().signal;
  await src.info(signal);
  if (src.readRange === undefined) throw new Error('no readRange');
  return src.readRange(1000, 300_000, signal);
}

async function failure(p: Promise<unknown>): Promise<{ code: unknown; message: string }> {
  try {
    await p;
  } catch (err) {
    return { code: errorCode(err), message: err instanceof Error ? err.message : String(err) };
  }
  throw new Error('expected a failure');
}

const S3_GET = /^GET \/bucket\/images\/disk\.img/;

describe('a source that stalls on every attempt fails with CDI_SOURCE_STALLED', () => {
  it.each<{
    what: string;
    kind: Kind;
    on: Answer;
    rule: Rule;
    run: (s: DataSource) => Promise<unknown>;
    message: RegExp;
  }>([
    {
      what: 'registry: the layer blob goes silent after 64 KiB, on every resume',
      kind: 'registry',
      on: 'layer blob',
      rule: { afterBodyBytes: 64 * 1024 },
      run: download,
      message:
        /^docker:\/\/127\.0\.0\.1:\d+\/stall:v1 stalled: .* without progress \(\d+ stalls?; idle timeout 150 ms, stall budget 900 ms\); last: no data from registry blob sha256:[0-9a-f]{64} for \d+ ms$/,
    },
    {
      what: 'registry: the manifest is never answered',
      kind: 'registry',
      on: /^GET \/v2\/stall\/manifests\//,
      rule: { afterBodyBytes: 'before-headers' },
      run: download,
      message:
        /^docker:\/\/127\.0\.0\.1:\d+\/stall:v1 stalled: .* without progress \(\d+ stalls?; idle timeout 150 ms, stall budget 900 ms\); last: no data from reading manifest v1 in /,
    },
    {
      what: 's3: the object body goes silent after 64 KiB, on every resume',
      kind: 's3',
      on: S3_GET,
      rule: { afterBodyBytes: 64 * 1024 },
      run: download,
      message:
        /^s3:\/\/bucket\/images\/disk\.img stalled: .* without progress \(\d+ stalls?; idle timeout 150 ms, stall budget 900 ms\); last: no data from GetObject s3:\/\/bucket\/images\/disk\.img for \d+ ms$/,
    },
    {
      what: 's3: HeadObject is never answered',
      kind: 's3',
      on: /^HEAD \/bucket\/images\/disk\.img/,
      rule: { afterBodyBytes: 'before-headers' },
      run: download,
      message:
        /^s3:\/\/bucket\/images\/disk\.img stalled: .* without progress .*; last: no data from HeadObject s3:/,
    },
    {
      what: 's3: a ranged read goes silent after its headers',
      kind: 's3',
      on: S3_GET,
      rule: { afterBodyBytes: 0 },
      run: readRange,
      message:
        /^s3:\/\/bucket\/images\/disk\.img stalled: .* without progress .*; last: no data from GetObject s3:/,
    },
  ])('$what', async ({ kind, on, rule, run, message }) => {
    const { src, relay } = await sourceBehind(kind, on, rule);
    const err = await failure(run(src));
    expect(err.code).toBe('CDI_SOURCE_STALLED');
    expect(err.message).toMatch(message);
    // Stalls were cut and retried until the budget was spent, not given up at the first.
    expect(relay.stalls()).toBeGreaterThan(1);
  });
});

describe('a single stall is cut after the idle timeout and the transfer resumes', () => {
  it.each<{ what: string; kind: Kind; on: Answer; rule: Rule }>([
    {
      what: 'registry: layer blob',
      kind: 'registry',
      on: 'layer blob',
      rule: { afterBodyBytes: 300_000, times: 1 },
    },
    {
      what: 'registry: manifest',
      kind: 'registry',
      on: /^GET \/v2\/stall\/manifests\//,
      rule: { afterBodyBytes: 'before-headers', times: 1 },
    },
    {
      what: 'registry: the HTTPS ping of an insecure registry gets no answer (plain HTTP is next)',
      kind: 'registry',
      on: /^$/,
      rule: { afterBodyBytes: 0, silentToTls: true },
    },
    {
      what: 's3: object body',
      kind: 's3',
      on: S3_GET,
      rule: { afterBodyBytes: 300_000, times: 1 },
    },
  ])('$what', async ({ kind, on, rule }) => {
    const { src, relay } = await sourceBehind(kind, on, rule, ROOMY);
    const got = await download(src);
    expect(got.equals(DISK)).toBe(true);
    expect(relay.stalls()).toBe(1);
  });
});

describe('cdi import against a registry or S3 server that stalls', () => {
  it.each<{ what: string; kind: Kind; on: Answer; args: (host: string) => string[] }>([
    {
      what: 'registry layer blob',
      kind: 'registry',
      on: 'layer blob',
      args: (host) => ['--source', `docker://${host}/stall:v1`, '--insecure-tls'],
    },
    {
      what: 's3 object',
      kind: 's3',
      on: S3_GET,
      args: (host) => [
        '--source',
        `http://${host}/bucket/${KEY}`,
        '--source-kind',
        's3',
        '--access-key-id',
        CREDS.accessKeyId,
        '--secret-key',
        CREDS.secretKey,
      ],
    },
  ])('$what: exits non-zero with one line naming the stall, and leaves no file', async (row) => {
    const { relay } = await sourceBehind(row.kind, row.on, { afterBodyBytes: 64 * 1024 });
    const dest = path.join(work, `cli-${row.kind}.img`);
    const r = await runCdi([
      'import',
      ...row.args(relay.host),
      '--dest',
      dest,
      '--idle-timeout',
      '150ms',
      '--stall-budget',
      '900ms',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(
      /^cdi import: .* stalled: .* without progress \(\d+ stalls?; idle timeout 150 ms, stall budget 900 ms\)/,
    );
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });
});
