// SPDX-License-Identifier: Apache-2.0
/**
 * Unpacks an OCI image archive (`oci-archive`, as `npm run image` writes) into a root filesystem
 * (or an OCI layout directory, as `skopeo copy` writes) by reading its layout: index.json →
 * manifest → layers, each extracted in order with GNU tar
 * (owners kept: run as root). OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) of a layer remove what
 * earlier layers put there. No container engine is involved.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const TAR_LIST_MAX_BUFFER = 256 << 20;

interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The runtime part of an image's config (what a container engine would apply). */
export interface ImageRuntimeConfig {
  readonly User?: string;
  readonly Entrypoint?: readonly string[];
  readonly Cmd?: readonly string[];
  readonly Env?: readonly string[];
  readonly WorkingDir?: string;
  readonly Labels?: Readonly<Record<string, string>>;
}

/** An unpacked image: its root filesystem and runtime config. */
export interface UnpackedImage {
  readonly rootfs: string;
  readonly config: ImageRuntimeConfig;
  /** The manifest's layers, base first. */
  readonly layers: readonly Descriptor[];
}

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

function blobPath(layout: string, digest: string): string {
  const [algorithm, hex] = digest.split(':');
  if (algorithm === undefined || hex === undefined || !/^[a-f0-9]{64}$/.test(hex)) {
    throw new Error(`unsupported blob digest ${digest}`);
  }
  return join(layout, 'blobs', algorithm, hex);
}

/** Picks the manifest tagged `ref` (`org.opencontainers.image.ref.name`), or the only one. */
function pickManifest(manifests: readonly Descriptor[], ref: string | undefined): Descriptor {
  const found =
    ref === undefined
      ? manifests.length === 1
        ? manifests[0]
        : undefined
      : manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref);
  if (found === undefined) {
    throw new Error(
      `the image index has ${manifests.length} manifests and none tagged ${ref ?? '(any)'}`,
    );
  }
  return found;
}

/** Applies a layer's whiteouts to what is already in `rootfs`, before the layer is extracted. */
async function applyWhiteouts(rootfs: string, entries: readonly string[]): Promise<void> {
  for (const entry of entries) {
    const name = basename(entry);
    if (!name.startsWith('.wh.')) continue;
    const dir = join(rootfs, dirname(entry));
    if (name === '.wh..wh..opq') {
      // Opaque directory: nothing of the earlier layers stays in it.
      for (const child of await readdir(dir).catch(() => [])) {
        await rm(join(dir, child), { recursive: true, force: true });
      }
    } else {
      await rm(join(dir, name.slice('.wh.'.length)), { recursive: true, force: true });
    }
  }
}

/**
 * Unpacks the image tagged `ref` (or the only image) of the OCI layout `layout` into `rootfs`:
 * its layers in order, whiteouts applied. Layers may be gzip, zstd or uncompressed (GNU tar
 * detects which).
 */
export async function unpackLayout(
  layout: string,
  rootfs: string,
  ref?: string,
): Promise<Omit<UnpackedImage, 'rootfs'>> {
  await mkdir(rootfs, { recursive: true });
  const index = await readJson<{ manifests: Descriptor[] }>(join(layout, 'index.json'));
  const manifest = await readJson<{ config: Descriptor; layers: Descriptor[] }>(
    blobPath(layout, pickManifest(index.manifests, ref).digest),
  );
  const config = await readJson<{ config?: ImageRuntimeConfig }>(
    blobPath(layout, manifest.config.digest),
  );
  for (const layer of manifest.layers) {
    const blob = blobPath(layout, layer.digest);
    const { stdout } = await run('tar', ['-tf', blob], { maxBuffer: TAR_LIST_MAX_BUFFER });
    const entries = stdout.split('\n').filter((e) => e !== '');
    await applyWhiteouts(rootfs, entries);
    await run('tar', [
      '-xf',
      blob,
      '-C',
      rootfs,
      '--numeric-owner',
      '--same-permissions',
      '--exclude=.wh.*',
      '--exclude=*/.wh.*',
    ]);
  }
  return { config: config.config ?? {}, layers: manifest.layers };
}

/**
 * Extracts `archive` into `dir` (`dir/layout`, then `dir/rootfs`) and returns the root
 * filesystem and config of the image tagged `ref` (or of its only image).
 */
export async function unpackImage(
  archive: string,
  dir: string,
  ref?: string,
): Promise<UnpackedImage> {
  const layout = join(dir, 'layout');
  const rootfs = join(dir, 'rootfs');
  await mkdir(layout, { recursive: true });
  await run('tar', ['-xf', archive, '-C', layout]);
  const image = await unpackLayout(layout, rootfs, ref);
  await rm(layout, { recursive: true, force: true });
  return { rootfs, ...image };
}

/**
 * Removes the unpacked images under `cacheDir` (directories named by a sha256 hex, holding a
 * `config.json` touched on every use) other than `keep` that were not used for `idleMs`.
 */
export async function pruneUnpacked(cacheDir: string, keep: string, idleMs: number): Promise<void> {
  for (const entry of await readdir(cacheDir).catch(() => [])) {
    if (entry === keep || !/^[0-9a-f]{64}$/.test(entry)) continue;
    const used = await stat(join(cacheDir, entry, 'config.json')).catch(() => undefined);
    if (used === undefined || Date.now() - used.mtimeMs > idleMs)
      await rm(join(cacheDir, entry), { recursive: true, force: true });
  }
}
