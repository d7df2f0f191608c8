// SPDX-License-Identifier: Apache-2.0
/**
 * The registry source against a real `docker-registry` on 127.0.0.1: images written as OCI
 * layouts in a temp dir and pushed with skopeo, then read back through `RegistrySource`. Every
 * successful case asserts the streamed bytes equal the disk file put in the image.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../common/errors.js';
import { silentLogger } from '../../common/logger.js';
import { runImport } from '../../importer/pipeline/import.js';
import {
  NO_DISK_MESSAGE,
  RegistrySource,
  type RegistrySourceOptions,
} from '../../importer/sources/registry/source.js';
import { startTestProxy } from '../helpers/http-server.js';
import {
  pushLayout,
  scratchStyleImport,
  startRegistry,
  writeImageLayout,
  type ImageSpec,
  type RegistryServer,
  type WrittenLayout,
} from '../helpers/registry-server.js';

const run = promisify(execFile);

let work: string;
let qcow2: Buffer;
let rawXz: Buffer;
let rawImg: Buffer;

async function makeFixtures(): Promise<void> {
  const q = path.join(work, 'disk.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', q, '64M']);
  await run('qemu-io', [
    '-f',
    'qcow2',
    '-c',
    'write -P 0xab 1M 2M',
    '-c',
    'write -P 0x11 40M 64k',
    q,
  ]);
  qcow2 = await readFile(q);
  const raw = Buffer.alloc(8 * 1024 * 1024);
  randomBytes(256 * 1024).copy(raw, 1024 * 1024);
  rawImg = raw;
  const r = path.join(work, 'disk.raw');
  await writeFile(r, raw);
  await run('xz', ['-T1', '-1', '-k', r]);
  rawXz = await readFile(`${r}.xz`);
}

/** Reads a source to the end: the bytes, or the error code and message. */
async function readAll(options: RegistrySourceOptions): Promise<{
  bytes: Buffer;
  length: number | undefined;
  labels: Record<string, string> | undefined;
}> {
  const src = new RegistrySource(options);
  const signal = new AbortController().signal;
  try {
    const info = await src.info(signal);
    const chunks: Buffer[] = [];
    for await (const c of await src.stream(signal)) chunks.push(c as Buffer);
    return {
      bytes: Buffer.concat(chunks),
      length: info.length,
      labels: info.labels as Record<string, string>,
    };
  } finally {
    await src.close();
  }
}

async function failure(
  options: RegistrySourceOptions,
): Promise<{ code: ErrorCode; message: string }> {
  try {
    await readAll(options);
  } catch (err) {
    const e = err as { code: ErrorCode; message: string };
    return { code: e.code, message: e.message };
  }
  throw new Error('expected the import to fail');
}

/** Corrupts a stored blob in place (same size, so the registry still serves it). */
async function flipByte(file: string, pos: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, pos);
    b[0] = (b[0] ?? 0) ^ 0xff;
    await fh.write(b, 0, 1, pos);
  } finally {
    await fh.close();
  }
}

let layoutCount = 0;
async function push(
  registry: RegistryServer,
  target: string,
  image: ImageSpec | ImageSpec[],
  dockerFormat = false,
): Promise<WrittenLayout> {
  const dir = path.join(work, `layout-${layoutCount++}`);
  const layout = await writeImageLayout(dir, image);
  await pushLayout(layout, registry, { target, dockerFormat });
  return layout;
}

const diskLayer = (name: string, data: Buffer, compression: 'gzip' | 'zstd' | 'none' = 'gzip') => ({
  compression,
  entries: [
    { name: 'disk/', type: 'directory' as const },
    { name, data },
  ],
});

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'cdi-registry-test-'));
  await makeFixtures();
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('plain HTTP registry (insecure)', () => {
  let registry: RegistryServer;
  const url = (target: string): string => `docker://${registry.host}/${target}`;
  const insecure = { transport: { insecureTls: true } } as const;

  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry.close();
  });

  it.each([
    {
      what: 'qcow2 disk in a gzip layer',
      name: 'disk/disk.qcow2',
      disk: () => qcow2,
      compression: 'gzip' as const,
    },
    {
      what: 'xz raw disk in a zstd layer',
      name: 'disk/disk.raw.xz',
      disk: () => rawXz,
      compression: 'zstd' as const,
    },
    {
      what: 'raw disk in a plain tar layer',
      name: './disk/disk.img',
      disk: () => rawImg,
      compression: 'none' as const,
    },
  ])('streams the $what byte for byte', async ({ name, disk, compression }) => {
    const target = `cd-${compression}:v1`;
    await push(registry, target, { layers: [diskLayer(name, disk(), compression)] });
    const got = await readAll({ url: url(target), ...insecure });
    expect(got.length).toBe(disk().length);
    expect(got.bytes.equals(disk())).toBe(true);
  });

  it('reads a Docker schema 2 image (skopeo --format v2s2)', async () => {
    await push(registry, 'docker-format:v1', { layers: [diskLayer('disk/d.qcow2', qcow2)] }, true);
    const got = await readAll({ url: url('docker-format:v1'), ...insecure });
    expect(got.bytes.equals(qcow2)).toBe(true);
  });

  it('trusts a registry listed in insecureRegistries without --insecure-tls', async () => {
    await push(registry, 'listed:v1', { layers: [diskLayer('disk/d.qcow2', qcow2)] });
    const got = await readAll({ url: url('listed:v1'), insecureRegistries: [registry.host] });
    expect(got.bytes.equals(qcow2)).toBe(true);
    const refused = await failure({ url: url('listed:v1') });
    expect(refused.code).toBe('CDI_REGISTRY_PULL_FAILED');
  });

  it.each([
    {
      what: 'a later layer whites out the earlier disk and adds another',
      upper: [
        { name: 'disk/.wh.old.qcow2', data: '' },
        { name: 'disk/new.img', data: 'NEW' },
      ],
      expected: 'NEW',
    },
    {
      what: 'a later opaque disk/ directory hides the earlier disk',
      upper: [
        { name: 'disk/.wh..wh..opq', data: '' },
        { name: 'disk/other.img', data: 'OTHER' },
      ],
      expected: 'OTHER',
    },
    {
      what: 'a later layer that does not touch disk/ leaves the earlier disk visible',
      upper: [{ name: 'etc/motd', data: 'hello' }],
      expected: 'qcow2',
    },
    {
      what: 'a later layer replaces the disk file in place',
      upper: [{ name: 'disk/old.qcow2', data: 'REPLACED' }],
      expected: 'REPLACED',
    },
  ])('honours overlay rules: $what', async ({ upper, expected }) => {
    const target = `overlay-${layoutCount}:v1`;
    await push(registry, target, {
      layers: [diskLayer('disk/old.qcow2', qcow2), { compression: 'gzip', entries: upper }],
    });
    const got = await readAll({ url: url(target), ...insecure });
    expect(got.bytes.equals(expected === 'qcow2' ? qcow2 : Buffer.from(expected))).toBe(true);
  });

  it.each([
    {
      what: 'a later layer whites out the only disk',
      layers: [
        diskLayer('disk/a.img', Buffer.alloc(3 << 20, 0x5a)),
        { compression: 'none' as const, entries: [{ name: 'disk/.wh.a.img', data: '' }] },
      ],
    },
    {
      what: 'the image has no disk/ directory at all',
      layers: [
        {
          compression: 'gzip' as const,
          entries: [
            { name: 'etc/hostname', data: 'x' },
            { name: 'diskette/a.img', data: 'y' },
          ],
        },
      ],
    },
    {
      what: 'the only disk/ file is nested one level deeper',
      layers: [{ compression: 'gzip' as const, entries: [{ name: 'disk/sub/a.img', data: 'y' }] }],
    },
  ])('reports no disk when $what', async ({ layers }) => {
    const target = `nodisk-${layoutCount}:v1`;
    await push(registry, target, { layers });
    const f = await failure({ url: url(target), ...insecure });
    expect(f).toEqual({ code: 'CDI_REGISTRY_NO_DISK', message: NO_DISK_MESSAGE });
  });

  it.each([
    { what: 'an unknown tag', target: 'cd-gzip:wrongtag' },
    { what: 'an unknown repository', target: 'no-such-repo:v1' },
  ])('fails to pull $what in CDI words', async ({ target }) => {
    const f = await failure({ url: url(target), ...insecure });
    expect(f.code).toBe('CDI_REGISTRY_PULL_FAILED');
    expect(f.message).toMatch(/^failed to pull image: .*unknown/);
  });

  it('reports KUBEVIRT_IO_ env vars as labels, with CDI names', async () => {
    await push(registry, 'labelled:v1', {
      env: [
        'PATH=/usr/bin',
        'INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE=u1.small',
        'INSTANCETYPE_KUBEVIRT_IO_DEFAULT_PREFERENCE=fedora',
      ],
      layers: [diskLayer('disk/d.qcow2', qcow2)],
    });
    const got = await readAll({ url: url('labelled:v1'), ...insecure });
    expect(got.labels).toEqual({
      'instancetype.kubevirt.io/default-instancetype': 'u1.small',
      'instancetype.kubevirt.io/default-preference': 'fedora',
    });
  });

  it.each([
    { what: 'containers.bootc=1', labels: { 'containers.bootc': '1' } },
    { what: 'ostree.bootable=1', labels: { 'ostree.bootable': '1' } },
  ])('refuses a bootable container labelled $what', async ({ labels }) => {
    const target = `bootc-${layoutCount}:v1`;
    await push(registry, target, { labels, layers: [diskLayer('disk/d.qcow2', qcow2)] });
    const f = await failure({ url: url(target), ...insecure });
    expect(f.code).toBe('CDI_REGISTRY_BOOTC');
  });

  it('goes through the import proxy', async () => {
    await push(registry, 'proxied:v1', { layers: [diskLayer('disk/d.qcow2', qcow2)] });
    const proxy = await startTestProxy();
    try {
      const got = await readAll({
        url: url('proxied:v1'),
        ...insecure,
        proxy: { httpProxy: proxy.url, httpsProxy: proxy.url },
      });
      expect(got.bytes.equals(qcow2)).toBe(true);
      expect(proxy.requests.map((r) => r.target)).toContain(
        `http://${registry.host}/v2/proxied/manifests/v1`,
      );
    } finally {
      await proxy.close();
    }
  });

  it('aborts mid-stream with CDI_ABORTED, and closes after info() alone', async () => {
    await push(registry, 'abortable:v1', { layers: [diskLayer('disk/d.img', rawImg, 'none')] });
    const ac = new AbortController();
    const src = new RegistrySource({ url: url('abortable:v1'), ...insecure });
    await src.info(ac.signal);
    const stream = await src.stream(ac.signal);
    let code: unknown;
    try {
      for await (const _chunk of stream) ac.abort();
    } catch (err) {
      code = (err as { code?: unknown }).code;
    }
    expect(code).toBe('CDI_ABORTED');
    await src.close();

    const idle = new RegistrySource({ url: url('abortable:v1'), ...insecure });
    expect((await idle.info(new AbortController().signal)).length).toBe(rawImg.length);
    await idle.close();
    await idle.close();
  });

  it('refuses pullMethod node with a clear message', async () => {
    const f = await failure({ url: url('cd-gzip:v1'), ...insecure, pullMethod: 'node' });
    expect(f.code).toBe('CDI_NOT_SUPPORTED');
    expect(f.message).toContain('pullMethod "node"');
  });

  describe('multi-arch index', () => {
    const amd = Buffer.from('amd64 disk');
    const arm = Buffer.from('arm64 disk');
    let layout: WrittenLayout;
    beforeAll(async () => {
      layout = await push(registry, 'multi:v1', [
        { architecture: 'amd64', layers: [diskLayer('disk/d.img', amd)] },
        { architecture: 'arm64', variant: 'v8', layers: [diskLayer('disk/d.img', arm)] },
      ]);
    });

    it.each([
      { what: 'amd64 by tag', ref: () => 'multi:v1', arch: 'amd64', expected: amd },
      { what: 'arm64 by tag', ref: () => 'multi:v1', arch: 'arm64', expected: arm },
      { what: 'aarch64 spelling by tag', ref: () => 'multi:v1', arch: 'aarch64', expected: arm },
      {
        what: 'arm64 by index digest',
        ref: () => `multi@${layout.digest}`,
        arch: 'arm64',
        expected: arm,
      },
      {
        what: 'an image manifest digest',
        ref: () => `multi@${layout.images[0]?.manifest.digest ?? ''}`,
        arch: 'amd64',
        expected: amd,
      },
    ])('chooses $what', async ({ ref, arch, expected }) => {
      const got = await readAll({ url: url(ref()), architecture: arch, ...insecure });
      expect(got.bytes.equals(expected)).toBe(true);
    });

    it('names the wanted and present architectures when absent', async () => {
      const f = await failure({ url: url('multi:v1'), architecture: 'absent', ...insecure });
      expect(f.code).toBe('CDI_REGISTRY_ARCH_NOT_FOUND');
      expect(f.message).toContain(
        'no image found in image index for architecture "absent", variant "", OS "linux"',
      );
      expect(f.message).toContain('linux/amd64, linux/arm64/v8');
    });

    it('checks the config architecture of a single image against an explicit choice', async () => {
      const f = await failure({
        url: url(`multi@${layout.images[1]?.manifest.digest ?? ''}`),
        architecture: 'amd64',
        ...insecure,
      });
      expect(f.code).toBe('CDI_REGISTRY_ARCH_NOT_FOUND');
      expect(f.message).toContain("manifest image architecture arm64 doesn't match");
    });
  });

  it.each([
    {
      what: 'plain tar layer, a byte of the disk flipped',
      compression: 'none' as const,
      at: (_size: number) => 2048 + 100,
    },
    {
      what: 'gzip layer, its CRC trailer flipped',
      compression: 'gzip' as const,
      at: (size: number) => size - 6,
    },
  ])('fails the stream on a corrupted blob ($what)', async ({ compression, at }) => {
    const target = `corrupt-${compression}:v1`;
    const layout = await push(registry, target, {
      layers: [diskLayer('disk/d.img', rawImg, compression)],
    });
    const layer = layout.images[0]?.layers[0];
    if (layer === undefined) throw new Error('no layer');
    await flipByte(registry.blobPath(layer.digest), at(layer.size));
    const f = await failure({ url: url(target), ...insecure });
    expect(f.code).toBe('CDI_REGISTRY_DIGEST_MISMATCH');
    expect(f.message).toContain(layer.digest);
  });
});

describe('end to end through runImport', () => {
  let registry: RegistryServer;
  const importTo = (url: string, dest: string) =>
    runImport({
      source: new RegistrySource({ url, insecureRegistries: [registry.host] }),
      sourceKind: 'registry',
      contentType: 'kubevirt',
      target: { kind: 'file', path: dest },
      filesystemOverhead: 0,
      preallocation: false,
      spillDir: work,
      signal: new AbortController().signal,
      logger: silentLogger,
    });
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry.close();
  });

  it.each([
    {
      what: 'qcow2 disk in a gzip layer',
      name: 'disk/disk.qcow2',
      file: 'disk.qcow2',
      compression: 'gzip' as const,
    },
    {
      what: 'xz raw disk in a zstd layer',
      name: 'disk/disk.raw.xz',
      file: 'disk.raw',
      compression: 'zstd' as const,
    },
  ])('imports a $what byte-identical to qemu-img convert', async ({ name, file, compression }) => {
    const target = `e2e-${compression}:v1`;
    const disk = await readFile(path.join(work, name.endsWith('.xz') ? `${file}.xz` : file));
    await push(registry, target, { layers: [diskLayer(name, disk, compression)] });
    const dest = path.join(work, `e2e-${compression}.img`);
    const expected = path.join(work, `e2e-${compression}.expected.img`);
    await run('qemu-img', ['convert', '-O', 'raw', path.join(work, file), expected]);
    const result = await importTo(`docker://${registry.host}/${target}`, dest);
    expect(result.access).toBe('stream');
    expect((await readFile(dest)).equals(await readFile(expected))).toBe(true);
  });

  it('matches the benchmark baseline (skopeo copy, tar, qemu-img convert)', async () => {
    await push(registry, 'baseline:v1', {
      layers: [
        diskLayer('disk/disk.qcow2', qcow2, 'zstd'),
        diskLayer('etc/motd', Buffer.from('hi')),
      ],
    });
    const ours = path.join(work, 'baseline-ours.img');
    const theirs = path.join(work, 'baseline-theirs.img');
    await importTo(`docker://${registry.host}/baseline:v1`, ours);
    const timings = await scratchStyleImport({
      registry,
      target: 'baseline:v1',
      workDir: work,
      dest: theirs,
    });
    expect(timings.copyMs).toBeGreaterThan(0);
    expect((await readFile(ours)).equals(await readFile(theirs))).toBe(true);
  });

  it('fails on a corrupted layer and leaves no image behind', async () => {
    const layout = await push(registry, 'e2e-corrupt:v1', {
      layers: [diskLayer('disk/disk.img', rawImg, 'none')],
    });
    const layer = layout.images[0]?.layers[0];
    if (layer === undefined) throw new Error('no layer');
    await flipByte(registry.blobPath(layer.digest), 4096);
    const dest = path.join(work, 'e2e-corrupt.img');
    const err = await importTo(`docker://${registry.host}/e2e-corrupt:v1`, dest).then(
      () => undefined,
      (e: unknown) => e as { code: string },
    );
    expect(err?.code).toBe('CDI_REGISTRY_DIGEST_MISMATCH');
    await expect(stat(dest)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('TLS registry with basic auth', () => {
  let registry: RegistryServer;
  const creds = { username: 'cdi', password: 's3cret' };
  const url = (target: string): string => `docker://${registry.host}/${target}`;

  beforeAll(async () => {
    registry = await startRegistry({ tls: true, auth: creds });
    await push(registry, 'secure:v1', { layers: [diskLayer('disk/d.qcow2', qcow2, 'zstd')] });
  });
  afterAll(async () => {
    await registry.close();
  });

  it.each([
    { what: 'the CA dir and credentials', insecureTls: false, withCa: true },
    { what: 'insecure TLS and credentials, no CA', insecureTls: true, withCa: false },
  ])('pulls with $what', async ({ insecureTls, withCa }) => {
    const got = await readAll({
      url: url('secure:v1'),
      transport: {
        ...(withCa ? { certDir: registry.caDir as string } : {}),
        insecureTls,
        accessKeyId: creds.username,
        secretKey: creds.password,
      },
    });
    expect(got.bytes.equals(qcow2)).toBe(true);
  });

  it.each([
    {
      what: 'wrong credentials',
      user: 'cdi',
      password: 'wrong',
      withCa: true,
      pattern: /unauthorized/,
    },
    {
      what: 'no credentials',
      user: undefined,
      password: undefined,
      withCa: true,
      pattern: /unauthorized|authentication/,
    },
    {
      what: 'no CA (certificate not trusted)',
      user: 'cdi',
      password: 's3cret',
      withCa: false,
      pattern: /certificate/i,
    },
  ])('fails with $what', async ({ user, password, withCa, pattern }) => {
    const f = await failure({
      url: url('secure:v1'),
      transport: {
        ...(withCa ? { certDir: registry.caDir as string } : {}),
        ...(user === undefined ? {} : { accessKeyId: user }),
        ...(password === undefined ? {} : { secretKey: password }),
      },
    });
    expect(f.code).toBe('CDI_REGISTRY_PULL_FAILED');
    expect(f.message).toMatch(/^failed to pull image: /);
    expect(f.message).toMatch(pattern);
  });
});
