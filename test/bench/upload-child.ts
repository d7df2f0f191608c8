// SPDX-License-Identifier: Apache-2.0
/**
 * A process of the upload benchmark (test/bench/upload.ts): `server`, `proxy` or `sink`. Prints
 * one JSON line `{"url":...}` when listening and `{"maxRssKiB":...,"cpuSeconds":...}` when it ends (the server after
 * its upload, the others on SIGTERM). Settings come from the environment (BENCH_*).
 */
import { createWriteStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { silentLogger } from '../../common/logger.js';
import { startUploadProxy } from '../../uploadproxy/proxy.js';
import { parsePublicKey } from '../../uploadproxy/token.js';
import { startUploadServer } from '../../uploadproxy/upload-server.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};
const say = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const rss = (): void => {
  const u = process.resourceUsage();
  say({ maxRssKiB: u.maxRSS, cpuSeconds: (u.userCPUTime + u.systemCPUTime) / 1e6 });
};
const onTerm = (stop: () => Promise<void>): void => {
  process.once('SIGTERM', () => {
    void stop().then(() => {
      rss();
      process.exitCode = 0;
    });
  });
};

async function server(): Promise<void> {
  const s = await startUploadServer({
    tls: {
      keyPem: await readFile(env('BENCH_KEY'), 'utf8'),
      certPem: await readFile(env('BENCH_CERT'), 'utf8'),
      clientCaPem: await readFile(env('BENCH_CA'), 'utf8'),
      clientName: env('BENCH_CLIENT_NAME'),
    },
    target: { kind: 'file', path: env('BENCH_TARGET') },
    filesystemOverhead: 0,
    preallocation: false,
    spillDir: env('BENCH_SCRATCH'),
    logger: silentLogger,
  });
  say({ url: s.url });
  await s.done;
  await s.close();
  rss();
}

async function proxy(): Promise<void> {
  const upstream = env('BENCH_UPSTREAM');
  const p = await startUploadProxy({
    tls: {
      keyPem: await readFile(env('BENCH_KEY'), 'utf8'),
      certPem: await readFile(env('BENCH_CERT'), 'utf8'),
    },
    tokenKey: await parsePublicKey(await readFile(env('BENCH_TOKEN_PUB'), 'utf8')),
    upstreamTls: {
      clientCertPem: await readFile(env('BENCH_CLIENT_CERT'), 'utf8'),
      clientKeyPem: await readFile(env('BENCH_CLIENT_KEY'), 'utf8'),
      serverCaPem: await readFile(env('BENCH_CA'), 'utf8'),
    },
    resolver: () => Promise.resolve({ url: upstream, ready: true }),
    logger: silentLogger,
  });
  say({ url: p.url });
  onTerm(() => p.close());
}

async function sink(): Promise<void> {
  const target = env('BENCH_TARGET');
  // BENCH_SINK_FSYNC=1: answer only once the file is on disk, as our sync upload does.
  const durable = process.env['BENCH_SINK_FSYNC'] === '1';
  const s = createServer((req, res) => {
    const receive = async (): Promise<void> => {
      const out = createWriteStream(target);
      await pipeline(req, out);
      if (durable) {
        const fh = await open(target, 'r+');
        await fh.datasync();
        await fh.close();
      }
    };
    receive().then(
      () => res.end('ok'),
      () => res.destroy(),
    );
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  say({ url: `http://127.0.0.1:${(s.address() as AddressInfo).port}` });
  onTerm(() => new Promise<void>((resolve) => s.close(() => resolve())));
}

const role = process.argv[2];
const main =
  role === 'server' ? server : role === 'proxy' ? proxy : role === 'sink' ? sink : undefined;
if (main === undefined) throw new Error('usage: upload-child server|proxy|sink');
await main();
