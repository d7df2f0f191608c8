// SPDX-License-Identifier: Apache-2.0
/**
 * The shipped image, run as a kubelet would: `npm run image` builds the OCI archive (the
 * mmdebstrap root filesystem is cached between runs), the layout is unpacked, and `cdi import`,
 * `cdi convert` and `cdi info` run inside it with runc as user 107, read-only root, the host
 * network, and a 600 MiB cgroup-v1 memory limit, which the page cache counts against as in a pod.
 * The disk is a generated qcow2.xz of 4 GiB virtual size holding more data than the limit,
 * served on 127.0.0.1; the results are compared with `qemu-img convert -O raw`. The container's
 * peak memory (and the bare process's, for comparison) is printed, not asserted.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { unpackImage, type UnpackedImage } from '../containers/oci-image.js';
import { runContainer, type BindMount, type ContainerResult } from '../containers/runc.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');
const MIB = 1 << 20;
const GIB = 1 << 30;
const VIRTUAL_SIZE = 4 * GIB;
/** Data in the image: more than the memory limit, so the page cache must be written back. */
const TEXT_BYTES = 704 * MIB;
const RANDOM_BYTES = 32 * MIB;
const MEMORY_LIMIT = 600 * MIB;
const APP_UID = 107;

let work: string;
let image: UnpackedImage;
let archive: string;
let fixtures: string;
let data: string;
let scratch: string;
let server: TestHttpServer;
let reference: string;

const mib = (bytes: number | undefined): string =>
  bytes === undefined ? 'n/a' : `${(bytes / MIB).toFixed(0)} MiB`;

/** A sparse raw disk: text blocks (compressible, like a filesystem) and some random data. */
async function writeRawDisk(path: string): Promise<void> {
  const text = Buffer.alloc(
    MIB,
    'root:x:0:0:root:/root:/bin/bash\nExec=/usr/bin/cloud-init --file /etc/cloud/cloud.cfg\n',
  );
  const fh = await open(path, 'w');
  try {
    await fh.truncate(VIRTUAL_SIZE);
    const stride = Math.floor(VIRTUAL_SIZE / (TEXT_BYTES / (8 * MIB)));
    for (let offset = 0, written = 0; written < TEXT_BYTES; offset += stride, written += 8 * MIB) {
      for (let i = 0; i < 8; i++) await fh.write(text, 0, MIB, offset + i * MIB);
    }
    await fh.write(randomBytes(RANDOM_BYTES), 0, RANDOM_BYTES, VIRTUAL_SIZE - RANDOM_BYTES - MIB);
  } finally {
    await fh.close();
  }
}

/** A directory the container's user owns (a pod volume with fsGroup). */
async function volume(name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await chown(dir, APP_UID, APP_UID);
  return dir;
}

/** Runs `cdi ARGS` in the image as a pod's container would. */
async function inImage(
  args: readonly string[],
  extra: { env?: readonly string[]; mounts?: readonly BindMount[] } = {},
): Promise<ContainerResult> {
  const config = image.config;
  return runContainer({
    rootfs: image.rootfs,
    args: [...(config.Entrypoint ?? []), ...args],
    env: [...(config.Env ?? []), 'HOME=/tmp', ...(extra.env ?? [])],
    cwd: config.WorkingDir ?? '/',
    uid: Number(config.User),
    gid: APP_UID,
    readonlyRootfs: true,
    mounts: [
      ...[
        { source: data, destination: '/data' },
        { source: scratch, destination: '/tmp' },
        { source: fixtures, destination: '/fixtures', readonly: true },
      ].filter((m) => !(extra.mounts ?? []).some((e) => e.destination === m.destination)),
      ...(extra.mounts ?? []),
    ],
    memoryLimitBytes: MEMORY_LIMIT,
    timeoutMs: 600_000,
  });
}

async function sameContent(a: string, b: string): Promise<boolean> {
  return run('cmp', ['--quiet', a, b]).then(
    () => true,
    () => false,
  );
}

function report(what: string, r: ContainerResult): void {
  console.log(
    `image test: ${what} in the container: ${(r.durationMs / 1000).toFixed(1)} s, peak memory ` +
      `${mib(r.peakMemoryBytes)} of ${mib(MEMORY_LIMIT)} with page cache (limit reached ` +
      `${r.memoryLimitHits ?? 'n/a'} times, reclaimed), peak RSS ${mib(r.peakRssBytes)}`,
  );
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'cdi-image-test-'));
  archive = join(work, 'cdi.oci.tar');
  const build = await run(
    process.execPath,
    [join(ROOT, 'scripts', 'build-image.mjs'), '--output', archive],
    {
      cwd: ROOT,
      maxBuffer: 16 * MIB,
    },
  );
  console.log(
    build.stdout
      .split('\n')
      .filter((l) => l.startsWith('image'))
      .join('\n'),
  );
  image = await unpackImage(archive, join(work, 'image'));

  fixtures = join(work, 'fixtures');
  await mkdir(fixtures);
  await chmod(fixtures, 0o755);
  const raw = join(work, 'source.raw');
  await writeRawDisk(raw);
  const qcow2 = join(fixtures, 'disk.qcow2');
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  await rm(raw);
  await run('xz', ['-T2', '-1', '-k', qcow2]);
  reference = join(work, 'reference.raw');
  await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow2, reference]);
  await rm(qcow2);
  data = await volume('data');
  scratch = await volume('tmp');
  server = await startTestHttpServer({ files: { '/disk.qcow2.xz': { path: `${qcow2}.xz` } } });
}, 900_000);

afterAll(async () => {
  await server?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('the cdi image', () => {
  it('carries user 107, entrypoint cdi, env and labels', async () => {
    const { stdout } = await run('skopeo', ['inspect', '--config', `oci-archive:${archive}`]);
    const config = (JSON.parse(stdout) as { config: typeof image.config }).config;
    expect(config.User).toBe('107');
    expect(config.Entrypoint).toEqual(['cdi']);
    expect(config.Env).toContain('NODE_ENV=production');
    expect(config.Labels?.['org.opencontainers.image.version']).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('imports a 4 GiB qcow2.xz over HTTP as user 107 with a read-only root under 600 MiB', async () => {
    const r = await inImage([
      'import',
      '--source',
      `${server.origin}/disk.qcow2.xz`,
      '--dest',
      '/data/disk.img',
      '--size',
      '4Gi',
    ]);
    report('cdi import', r);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(await sameContent(join(data, 'disk.img'), reference)).toBe(true);

    // The same import by the bare process, for the comparison (printed only).
    const bare = await run('/usr/bin/time', [
      '-f',
      '%e %M',
      process.execPath,
      join(ROOT, 'dist', 'cmd', 'cdi.js'),
      'import',
      '--source',
      `${server.origin}/disk.qcow2.xz`,
      '--dest',
      join(scratch, 'bare.img'),
      '--size',
      '4Gi',
      '--quiet',
    ]);
    const [seconds, kib] = bare.stderr.trim().split('\n').at(-1)?.split(' ') ?? [];
    console.log(
      `image test: cdi import as a bare process: ${seconds ?? '?'} s, peak RSS ${mib(Number(kib) * 1024)}`,
    );
    await rm(join(scratch, 'bare.img'), { force: true });
  });

  it('runs the importer pod entry (cdi importer) as the controller configures it', async () => {
    const podData = await volume('pod-data');
    const terminationLog = join(work, 'termination-log');
    await writeFile(terminationLog, '');
    await chown(terminationLog, APP_UID, APP_UID);
    const r = await inImage(['importer'], {
      env: [
        'IMPORTER_SOURCE=http',
        `IMPORTER_ENDPOINT=${server.origin}/disk.qcow2.xz`,
        'IMPORTER_CONTENTTYPE=kubevirt',
        'IMPORTER_IMAGE_SIZE=4Gi',
        // The claim holds exactly the virtual size (a real claim would be inflated for it).
        'FILESYSTEM_OVERHEAD=0',
        'OWNER_UID=4f2b6c1e-0000-4000-8000-000000000001',
        'INSECURE_TLS=false',
        'PREALLOCATION=false',
        // The host's network: a free port instead of :8443, which other tests may hold.
        `CDI_METRICS_ADDRESS=127.0.0.1:${await freePort()}`,
      ],
      mounts: [
        { source: podData, destination: '/data' },
        { source: terminationLog, destination: '/dev/termination-log' },
      ],
    });
    report('cdi importer (pod entry)', r);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(await readFile(terminationLog, 'utf8'))).toMatchObject({
      message: 'Import Complete',
    });
    expect(await sameContent(join(podData, 'disk.img'), reference)).toBe(true);
    await rm(podData, { recursive: true, force: true });
  });

  it('converts a local qcow2.xz and reports it with cdi info', async () => {
    const convert = await inImage(['convert', '/fixtures/disk.qcow2.xz', '/data/converted.img']);
    report('cdi convert', convert);
    expect(convert.stderr).toBe('');
    expect(convert.exitCode).toBe(0);
    expect(await sameContent(join(data, 'converted.img'), reference)).toBe(true);

    const info = await inImage(['info', '/fixtures/disk.qcow2.xz', '--json']);
    expect(info.stderr).toBe('');
    expect(info.exitCode).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({
      format: 'qcow2',
      'virtual-size': VIRTUAL_SIZE,
    });
  });
});
