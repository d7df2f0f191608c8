// SPDX-License-Identifier: Apache-2.0
/**
 * Upload benchmark (not part of `npm test`): a multi-GiB qcow2 uploaded with `curl -T` through
 * the upload proxy and upload server (mTLS, sync: converted to raw and flushed before the 200),
 * against `curl -T` of the same file to a plain HTTP sink that writes it to disk. Prints the time
 * ratio (ours / sink) and the peak RSS of proxy and server, and checks the result against
 * `qemu-img convert -O raw`.
 *
 *   npm run build:ts && node dist/test/bench/upload.js [--size 4Gi] [--data 2Gi] [--dir /tmp]
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { formatBytes, parseQuantity } from '../../common/quantity.js';
import { publicKeyPemOf, signUploadToken } from '../../uploadproxy/token.js';
import { qemuImg, sameContent } from '../fixtures/index.js';
import { TEST_CLIENT_NAME, createUploadPki } from '../helpers/upload-pki.js';
import { writeBenchImage } from './image.js';
import { measure, q, type Measurement } from './measure.js';

const HERE = dirname(fileURLToPath(import.meta.url));

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

interface ChildUsage {
  readonly maxRssKiB: number;
  readonly cpuSeconds: number;
}

interface Child {
  readonly url: string;
  /** Resolves with the peak RSS (KiB) and CPU time the process reported when it ended. */
  readonly ended: Promise<ChildUsage>;
  readonly process: ChildProcessWithoutNullStreams;
}

async function startChild(role: string, env: Record<string, string>): Promise<Child> {
  const nodeArgs = process.env['BENCH_NODE_ARGS']?.split(' ').filter((a) => a !== '') ?? [];
  const child = spawn(process.execPath, [...nodeArgs, join(HERE, 'upload-child.js'), role], {
    env: { ...process.env, ...env },
  });
  child.stderr.pipe(process.stderr);
  const lines = createInterface({ input: child.stdout });
  const it = lines[Symbol.asyncIterator]();
  const first = await it.next();
  const { url } = JSON.parse(String(first.value)) as { url: string };
  const ended = (async (): Promise<ChildUsage> => {
    for (let next = await it.next(); next.done !== true; next = await it.next()) {
      const o = JSON.parse(String(next.value)) as Partial<ChildUsage>;
      if (o.maxRssKiB !== undefined)
        return { maxRssKiB: o.maxRssKiB, cpuSeconds: o.cpuSeconds ?? 0 };
    }
    throw new Error(`${role} ended without reporting its RSS`);
  })();
  return { url, ended, process: child };
}

async function stop(child: Child): Promise<ChildUsage> {
  child.process.kill('SIGTERM');
  const usage = await child.ended;
  await once(child.process, 'close');
  return usage;
}

const size = parseQuantity(flag('size', '4Gi'));
const data = parseQuantity(flag('data', '2Gi'));
const work = join(flag('dir', tmpdir()), 'cdi-bench-upload');
await rm(work, { recursive: true, force: true });
await mkdir(join(work, 'scratch'), { recursive: true });
const pki = await createUploadPki();
try {
  const raw = join(work, 'image.raw');
  await writeBenchImage(raw, size, data);
  const qcow2 = join(work, 'image.qcow2');
  await qemuImg('convert', '-O', 'qcow2', raw, qcow2);
  await rm(raw);
  const reference = join(work, 'reference.raw');
  await qemuImg('convert', '-O', 'raw', qcow2, reference);
  const fileSize = (await stat(qcow2)).size;
  console.log(
    `image: qcow2 ${formatBytes(fileSize)} (virtual ${formatBytes(size)}, data ${formatBytes(data)})`,
  );

  const sinkRun = async (fsync: boolean): Promise<{ m: Measurement; usage: ChildUsage }> => {
    const sink = await startChild('sink', {
      BENCH_TARGET: join(work, 'sink.bin'),
      BENCH_SINK_FSYNC: fsync ? '1' : '0',
    });
    const m = await measure(`curl -sS -o /dev/null -T ${q(qcow2)} ${q(`${sink.url}/image`)}`);
    const usage = await stop(sink);
    await rm(join(work, 'sink.bin'));
    return { m, usage };
  };
  const theirs = await sinkRun(false);
  const theirsDurable = await sinkRun(true);

  const pub = join(work, 'token.pub');
  await writeFile(pub, publicKeyPemOf(pki.tokenKeys.privateKey));
  await writeFile(join(pki.dir, 'client.pem'), pki.clientCertPem);
  await writeFile(join(pki.dir, 'client-key.pem'), pki.clientKeyPem);
  const common = {
    BENCH_KEY: pki.serverKeyFile,
    BENCH_CERT: pki.serverCertFile,
    BENCH_CA: pki.caFile,
  };
  const target = join(work, 'disk.img');
  const server = await startChild('server', {
    ...common,
    BENCH_CLIENT_NAME: TEST_CLIENT_NAME,
    BENCH_TARGET: target,
    BENCH_SCRATCH: join(work, 'scratch'),
  });
  const proxy = await startChild('proxy', {
    ...common,
    BENCH_UPSTREAM: server.url,
    BENCH_TOKEN_PUB: pub,
    BENCH_CLIENT_CERT: join(pki.dir, 'client.pem'),
    BENCH_CLIENT_KEY: join(pki.dir, 'client-key.pem'),
  });
  const token = await signUploadToken(
    pki.tokenKeys.privateKey,
    { namespace: 'bench', pvc: 'disk' },
    { lifetimeSeconds: 3600 },
  );
  const ours = await measure(
    `test "$(curl -sS -o /dev/null -w '%{http_code}' --cacert ${q(pki.caFile)} -H ${q(`Authorization: Bearer ${token}`)} -T ${q(qcow2)} ${q(`${proxy.url}/v1beta1/upload`)})" = 200`,
  );
  const serverRss = await server.ended;
  const proxyRss = await stop(proxy);
  const identical = await sameContent(target, reference);
  const mib = (u: ChildUsage): string =>
    `${(u.maxRssKiB / 1024).toFixed(0)} MiB (CPU ${u.cpuSeconds.toFixed(1)} s)`;
  const secs = (m: Measurement): string => `${m.seconds.toFixed(2)} s`;
  console.log(
    `curl -T to a plain HTTP sink (writes the file): ${secs(theirs.m)}, sink ${mib(theirs.usage)}`,
  );
  console.log(`the same sink answering after fdatasync: ${secs(theirsDurable.m)}`);
  console.log(`curl -T through proxy + upload server (mTLS, qcow2 -> raw, fsync): ${secs(ours)}`);
  const ratio = (m: Measurement): string => (ours.seconds / m.seconds).toFixed(2);
  console.log(`ratio ours/sink: ${ratio(theirs.m)}; ours/durable sink: ${ratio(theirsDurable.m)}`);
  console.log(`peak RSS: proxy ${mib(proxyRss)}, upload server ${mib(serverRss)}`);
  console.log(`result byte-identical to qemu-img convert -O raw: ${identical ? 'yes' : 'NO'}`);
  if (!identical) process.exitCode = 1;
} finally {
  await pki.cleanup();
  await rm(work, { recursive: true, force: true });
}
