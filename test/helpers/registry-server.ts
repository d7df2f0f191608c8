// SPDX-License-Identifier: Apache-2.0
/**
 * A real OCI registry for tests and the benchmark: Debian's `docker-registry` (the CNCF
 * distribution server) on 127.0.0.1 with a generated config (plain HTTP, htpasswd basic auth,
 * TLS from a generated CA), plus helpers that write OCI image layouts (blobs, manifests,
 * index.json) in a temp dir and push them with `skopeo copy`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { CompressStream } from 'zstd-napi';
import { createTestTls, type TestTls } from './tls.js';
import { freePort } from './free-port.js';

const run = promisify(execFile);

/** Options of {@link startRegistry}. */
export interface RegistryServerOptions {
  /** Require htpasswd basic auth with these credentials. */
  readonly auth?: { readonly username: string; readonly password: string };
  /** Serve HTTPS with a certificate from a generated CA. */
  readonly tls?: boolean;
}

/** A running registry. */
export interface RegistryServer {
  /** `127.0.0.1:PORT`, as written in `docker://` URLs. */
  readonly host: string;
  /** The registry's storage root (tests tamper with blobs here). */
  readonly storageDir: string;
  /** Directory holding the CA certificate, when TLS is on (`--cert-dir`). */
  readonly caDir: string | undefined;
  readonly auth: RegistryServerOptions['auth'];
  /** Path of a blob's data file in the storage. */
  blobPath(digest: string): string;
  close(): Promise<void>;
}

/** Resolves once the registry logs that it listens; rejects if it exits first. */
function waitListening(child: ChildProcess, addr: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const onData = (b: Buffer): void => {
      log += b.toString('utf8');
      if (log.includes(`listening on ${addr}`)) {
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        // Keep draining so the child never blocks on a full pipe.
        child.stderr?.resume();
        resolve();
      }
    };
    const onExit = (code: number | null): void => {
      reject(new Error(`docker-registry exited (${code}) before listening:\n${log}`));
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Starts `docker-registry` on 127.0.0.1 with a generated config in a temp dir. */
export async function startRegistry(options: RegistryServerOptions = {}): Promise<RegistryServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cdi-registry-'));
  const storageDir = path.join(dir, 'storage');
  await mkdir(storageDir);
  let tls: TestTls | undefined;
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storageDir}`,
    '  delete:',
    '    enabled: true',
  ];
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  lines.push('http:', `  addr: ${addr}`, '  secret: test-secret');
  if (options.tls === true) {
    tls = await createTestTls();
    await writeFile(path.join(dir, 'server.crt'), tls.certPem);
    await writeFile(path.join(dir, 'server.key'), tls.keyPem);
    lines.push(
      '  tls:',
      `    certificate: ${path.join(dir, 'server.crt')}`,
      `    key: ${path.join(dir, 'server.key')}`,
    );
  }
  if (options.auth !== undefined) {
    const { stdout } = await run('htpasswd', [
      '-Bbn',
      options.auth.username,
      options.auth.password,
    ]);
    await writeFile(path.join(dir, 'htpasswd'), stdout);
    lines.push(
      'auth:',
      '  htpasswd:',
      '    realm: basic-realm',
      `    path: ${path.join(dir, 'htpasswd')}`,
    );
  }
  const config = path.join(dir, 'config.yml');
  await writeFile(config, `${lines.join('\n')}\n`);
  const child = spawn('docker-registry', ['serve', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  try {
    await waitListening(child, addr);
  } catch (err) {
    child.kill();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    host: addr,
    storageDir,
    caDir: tls?.caDir,
    auth: options.auth,
    blobPath: (digest) => {
      const [algo = '', hex = ''] = digest.split(':');
      return path.join(storageDir, 'docker/registry/v2/blobs', algo, hex.slice(0, 2), hex, 'data');
    },
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await tls?.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// OCI image layouts

/** One entry of a layer tar. */
export interface LayerEntrySpec {
  /** Path inside the image, e.g. `disk/disk.qcow2`, `disk/.wh.old.img`, `./disk/`. */
  readonly name: string;
  readonly type?: 'file' | 'directory' | 'symlink';
  /** File content (small files). */
  readonly data?: Buffer | string;
  /** A local file streamed as content (large disks). */
  readonly file?: string;
  readonly linkname?: string;
  /** Permission bits (default 0755 for directories, 0644 for files). */
  readonly mode?: number;
}

/** How a layer is compressed. */
export type LayerCompressionSpec = 'gzip' | 'zstd' | 'none';

/** One layer. */
export interface LayerSpec {
  readonly compression: LayerCompressionSpec;
  readonly entries: readonly LayerEntrySpec[];
}

/** One single-platform image. */
export interface ImageSpec {
  readonly architecture?: string;
  readonly os?: string;
  readonly variant?: string;
  readonly env?: readonly string[];
  readonly labels?: Readonly<Record<string, string>>;
  readonly layers: readonly LayerSpec[];
}

/** An OCI descriptor as written. */
export interface WrittenDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

/** What {@link writeImageLayout} wrote. */
export interface WrittenLayout {
  readonly dir: string;
  /** The `oci:DIR:REF` reference name. */
  readonly refName: string;
  /** Digest of the top manifest (the index for multi-arch layouts). */
  readonly digest: string;
  /** Per image: manifest descriptor and layer descriptors. */
  readonly images: readonly { manifest: WrittenDescriptor; layers: WrittenDescriptor[] }[];
}

const LAYER_TYPES: Readonly<Record<LayerCompressionSpec, string>> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

/** Hashes and counts bytes flowing through. */
class HashCounter extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

async function writeBlobBytes(
  dir: string,
  bytes: Buffer,
): Promise<{ digest: string; size: number }> {
  const hex = createHash('sha256').update(bytes).digest('hex');
  await writeFile(path.join(dir, 'blobs/sha256', hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

async function writeEntry(pack: tar.Pack, e: LayerEntrySpec): Promise<void> {
  const type = e.type ?? 'file';
  if (type !== 'file' || e.file === undefined) {
    // A file without content is an empty file (whiteouts, markers).
    const data =
      e.data === undefined ? (type === 'file' ? Buffer.alloc(0) : undefined) : Buffer.from(e.data);
    await new Promise<void>((resolve, reject) => {
      const header = {
        name: e.name,
        type,
        mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
        ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
      };
      if (data === undefined) pack.entry(header, (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, data, (err) => (err ? reject(err) : resolve()));
    });
    return;
  }
  const { size } = await stat(e.file);
  const sink = pack.entry({ name: e.name, size, mode: e.mode ?? 0o644 });
  await pipeline(createReadStream(e.file, { highWaterMark: 1024 * 1024 }), sink);
}

/** Writes one layer blob (tar, then compressed), streaming; returns its descriptor. */
export async function writeLayerBlob(dir: string, spec: LayerSpec): Promise<WrittenDescriptor> {
  const tmp = path.join(dir, `layer-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
  const pack = tar.pack();
  const counter = new HashCounter();
  const stages: unknown[] = [pack];
  if (spec.compression === 'gzip') stages.push(createGzip({ level: 1 }));
  if (spec.compression === 'zstd') stages.push(new CompressStream({ compressionLevel: 1 }));
  const written = (pipeline as (...s: unknown[]) => Promise<void>)(
    ...stages,
    counter,
    createWriteStream(tmp),
  );
  try {
    for (const e of spec.entries) await writeEntry(pack, e);
    pack.finalize();
    await written;
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => undefined);
    throw err;
  }
  const hex = counter.hash.digest('hex');
  await rename(tmp, path.join(dir, 'blobs/sha256', hex));
  return { mediaType: LAYER_TYPES[spec.compression], digest: `sha256:${hex}`, size: counter.size };
}

async function writeImage(
  dir: string,
  image: ImageSpec,
): Promise<{ manifest: WrittenDescriptor; layers: WrittenDescriptor[] }> {
  const layers: WrittenDescriptor[] = [];
  for (const l of image.layers) layers.push(await writeLayerBlob(dir, l));
  const config = {
    architecture: image.architecture ?? 'amd64',
    os: image.os ?? 'linux',
    ...(image.variant === undefined ? {} : { variant: image.variant }),
    config: {
      ...(image.env === undefined ? {} : { Env: image.env }),
      ...(image.labels === undefined ? {} : { Labels: image.labels }),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
  };
  const configDesc = await writeBlobBytes(dir, Buffer.from(JSON.stringify(config)));
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configDesc },
    layers,
  };
  const m = await writeBlobBytes(dir, Buffer.from(JSON.stringify(manifest)));
  return { manifest: { mediaType: manifest.mediaType, ...m }, layers };
}

/**
 * Writes an OCI image layout: one image, or a multi-platform index when given several. The
 * `index.json` entry is annotated with `refName` so `oci:DIR:refName` selects it.
 * (diff_ids are the layer digests; registries and this importer never check them.)
 */
export async function writeImageLayout(
  dir: string,
  images: ImageSpec | readonly ImageSpec[],
  refName = 'latest',
): Promise<WrittenLayout> {
  await mkdir(path.join(dir, 'blobs/sha256'), { recursive: true });
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const list = Array.isArray(images) ? (images as readonly ImageSpec[]) : [images as ImageSpec];
  const written = [];
  for (const img of list) written.push(await writeImage(dir, img));
  let top: WrittenDescriptor;
  if (Array.isArray(images)) {
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: written.map((w, i) => ({
        ...w.manifest,
        platform: {
          architecture: list[i]?.architecture ?? 'amd64',
          os: list[i]?.os ?? 'linux',
          ...(list[i]?.variant === undefined ? {} : { variant: list[i]?.variant }),
        },
      })),
    };
    const d = await writeBlobBytes(dir, Buffer.from(JSON.stringify(index)));
    top = { mediaType: index.mediaType, ...d };
  } else {
    top = (written[0] as { manifest: WrittenDescriptor }).manifest;
  }
  const layoutIndex = {
    schemaVersion: 2,
    manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': refName } }],
  };
  await writeFile(path.join(dir, 'index.json'), JSON.stringify(layoutIndex));
  return { dir, refName, digest: top.digest, images: written };
}

/** Options of {@link pushLayout}. */
export interface PushOptions {
  /** `repo:tag` in the registry. */
  readonly target: string;
  /** Push in Docker schema 2 format (skopeo converts manifest and layer types). */
  readonly dockerFormat?: boolean;
}

/** `skopeo copy oci:DIR:REF docker://HOST/repo:tag`, keeping digests (all platforms of an index). */
export async function pushLayout(
  layout: WrittenLayout,
  registry: RegistryServer,
  options: PushOptions,
): Promise<void> {
  const args = ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false'];
  if (registry.auth !== undefined) {
    args.push('--dest-creds', `${registry.auth.username}:${registry.auth.password}`);
  }
  if (options.dockerFormat === true) args.push('--format', 'v2s2');
  else args.push('--preserve-digests', '--all');
  args.push(`oci:${layout.dir}:${layout.refName}`, `docker://${registry.host}/${options.target}`);
  await run('skopeo', args, { maxBuffer: 16 * 1024 * 1024 });
}

/** Options of {@link pushContainerDisk}. */
export interface ContainerDiskOptions {
  readonly registry: RegistryServer;
  /** `repo:tag`. */
  readonly target: string;
  /** The disk file to put under `/disk/` (streamed, any size). */
  readonly diskFile: string;
  /** Name under `/disk/`; default the file's base name. */
  readonly diskName?: string;
  readonly compression?: LayerCompressionSpec;
  /** Where the layout is written (removed afterwards); default a temp dir. */
  readonly workDir?: string;
}

/**
 * Builds a one-layer container disk from a local file and pushes it; what the benchmark needs to
 * serve a multi-GiB container disk. Returns the manifest digest.
 */
export async function pushContainerDisk(options: ContainerDiskOptions): Promise<string> {
  const dir = await mkdtemp(path.join(options.workDir ?? tmpdir(), 'cdi-layout-'));
  try {
    const layout = await writeImageLayout(dir, {
      layers: [
        {
          compression: options.compression ?? 'gzip',
          entries: [
            { name: 'disk/', type: 'directory' },
            {
              name: `disk/${options.diskName ?? path.basename(options.diskFile)}`,
              file: options.diskFile,
            },
          ],
        },
      ],
    });
    await pushLayout(layout, options.registry, { target: options.target });
    return layout.digest;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Options of {@link scratchStyleImport}. */
export interface ScratchStyleOptions {
  readonly registry: RegistryServer;
  /** `repo:tag`. */
  readonly target: string;
  /** Scratch directory for the copied image and the extracted disk (removed afterwards). */
  readonly workDir: string;
  /** Where the raw image is written. */
  readonly dest: string;
}

/** Wall-clock milliseconds of each step of {@link scratchStyleImport}. */
export interface ScratchStyleTimings {
  readonly copyMs: number;
  readonly extractMs: number;
  readonly convertMs: number;
}

/**
 * The benchmark baseline, what a scratch-based importer does: `skopeo copy` of the image to a
 * local directory, extraction of `disk/*` from every layer (base first, as the Go CDI does), then
 * `qemu-img convert -O raw` of the extracted disk.
 */
export async function scratchStyleImport(
  options: ScratchStyleOptions,
): Promise<ScratchStyleTimings> {
  const dir = await mkdtemp(path.join(options.workDir, 'cdi-scratch-'));
  try {
    const image = path.join(dir, 'image');
    const extracted = path.join(dir, 'extracted');
    await mkdir(extracted);
    let t = performance.now();
    await run('skopeo', [
      '--insecure-policy',
      'copy',
      '--quiet',
      '--src-tls-verify=false',
      ...(options.registry.auth === undefined
        ? []
        : ['--src-creds', `${options.registry.auth.username}:${options.registry.auth.password}`]),
      `docker://${options.registry.host}/${options.target}`,
      `dir:${image}`,
    ]);
    const copyMs = performance.now() - t;
    t = performance.now();
    const manifest = JSON.parse(await readFile(path.join(image, 'manifest.json'), 'utf8')) as {
      layers: { digest: string }[];
    };
    for (const layer of manifest.layers) {
      const blob = path.join(image, layer.digest.replace(/^sha256:/, ''));
      // GNU tar detects gzip/zstd by itself on extraction (-a is for creation only).
      await run('tar', ['-xf', blob, '-C', extracted, '--wildcards', 'disk/*', './disk/*']).catch(
        () => undefined,
      );
    }
    const disks = await readdir(path.join(extracted, 'disk'));
    const disk = disks[0];
    if (disk === undefined) throw new Error(`no disk in ${options.target}`);
    const extractMs = performance.now() - t;
    t = performance.now();
    await run('qemu-img', [
      'convert',
      '-O',
      'raw',
      path.join(extracted, 'disk', disk),
      options.dest,
    ]);
    return { copyMs, extractMs, convertMs: performance.now() - t };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
