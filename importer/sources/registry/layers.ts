// SPDX-License-Identifier: Apache-2.0
/**
 * Layer reading: blob → digest check → decompression (gzip, zstd or none, by media type) → tar
 * entries, and the overlay rules that decide which `disk/` file is visible in the final image.
 *
 * Layers are walked from the LAST to the first. Whatever an upper layer says about a path
 * (a whiteout `.wh.name`, an opaque directory `.wh..wh..opq`, or a non-directory entry that
 * shadows the path and everything under it) is recorded before the next lower layer is read, so
 * the first regular file directly under `disk/` that no upper layer hides is the disk of the
 * image, and it can be streamed as soon as it is met: no layer is ever landed on disk.
 */
import { pipeline } from 'node:stream/promises';
import type { Duplex, Readable } from 'node:stream';
import tar from 'tar-stream';
import { createDecoder } from '../../decompress/decoders.js';
import {
  CdiError,
  ErrorCodes,
  errorCode,
  errorMessage,
  isCdiError,
} from '../../../common/errors.js';
import { DigestVerifier } from './digest-verify.js';
import type { Descriptor } from './manifest.js';

/** How a layer blob is compressed. */
export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** The directory of a container disk (kubevirt `docs/container-register-disks.md`). */
export const DISK_DIR = 'disk';
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

/** Layer media types we read, by compression. */
const LAYER_MEDIA_TYPES: Readonly<Record<string, LayerCompression>> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar.zstd': 'zstd',
};

/** The compression of a layer media type; `CDI_REGISTRY_PULL_FAILED` for unknown types. */
export function layerCompression(mediaType: string): LayerCompression {
  const c = LAYER_MEDIA_TYPES[mediaType];
  if (c === undefined) {
    throw new CdiError(
      ErrorCodes.RegistryPullFailed,
      `unsupported layer media type "${mediaType}"`,
    );
  }
  return c;
}

/** The shared decoders (ADR 0002: zlib with 1 MiB output chunks, zstd-napi in process). */
function createDecompressor(c: LayerCompression): Duplex | undefined {
  return c === 'none' ? undefined : createDecoder(c);
}

/**
 * Normalises a tar entry name to a clean relative path (`./disk//a` → `disk/a`). Names that climb
 * out of the root (`../x`, `disk/../../x`) are refused with `CDI_ARCHIVE_UNSAFE_ENTRY`.
 */
export function normalizeEntryPath(name: string): string {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) {
        throw new CdiError(
          ErrorCodes.ArchiveUnsafeEntry,
          `layer entry "${name}" escapes the image root`,
        );
      }
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** What one tar entry means for the overlay. */
export type EntryKind =
  | { readonly kind: 'whiteout'; readonly path: string }
  | { readonly kind: 'opaque'; readonly dir: string }
  | { readonly kind: 'directory'; readonly path: string }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'other'; readonly path: string };

/** Classifies an entry by its normalised path and tar type. */
export function classifyEntry(name: string, type: string | null | undefined): EntryKind {
  const path = normalizeEntryPath(name);
  const base = baseOf(path);
  if (base === OPAQUE_MARKER) return { kind: 'opaque', dir: parentOf(path) };
  if (base.startsWith(WHITEOUT_PREFIX)) {
    const dir = parentOf(path);
    const target = base.slice(WHITEOUT_PREFIX.length);
    return { kind: 'whiteout', path: dir === '' ? target : `${dir}/${target}` };
  }
  if (type === 'directory') return { kind: 'directory', path };
  if (type === 'file' || type === 'contiguous-file' || type === null || type === undefined) {
    return { kind: 'file', path };
  }
  return { kind: 'other', path };
}

/**
 * What the layers above the current one hide. A path is hidden when it, or one of its parents,
 * was whited out or replaced by a non-directory above, or when one of its parents was made
 * opaque above.
 */
export class OverlayTracker {
  readonly #hidden = new Set<string>();
  readonly #opaque = new Set<string>();
  #pendingHidden: string[] = [];
  #pendingOpaque: string[] = [];

  /** True when a layer above hides `path` from the current layer. */
  isHidden(path: string): boolean {
    if (this.#hidden.has(path)) return true;
    for (let dir = parentOf(path); ; dir = parentOf(dir)) {
      if (this.#hidden.has(dir) && dir !== '') return true;
      if (this.#opaque.has(dir)) return true;
      if (dir === '') return false;
    }
  }

  /** Records an entry of the current layer; it takes effect for the layers below only. */
  record(entry: EntryKind): void {
    if (entry.kind === 'opaque') this.#pendingOpaque.push(entry.dir);
    else if (entry.kind === 'whiteout' || entry.kind === 'file' || entry.kind === 'other') {
      this.#pendingHidden.push(entry.path);
    }
  }

  /** Ends the current layer: what it recorded now hides paths of the layers below. */
  endLayer(): void {
    for (const p of this.#pendingHidden) this.#hidden.add(p);
    for (const d of this.#pendingOpaque) this.#opaque.add(d);
    this.#pendingHidden = [];
    this.#pendingOpaque = [];
  }
}

/** True for a regular file directly under `disk/` (CDI copies `disk/*`). */
export function isDiskCandidate(entry: EntryKind): entry is Extract<EntryKind, { kind: 'file' }> {
  return entry.kind === 'file' && parentOf(entry.path) === DISK_DIR && entry.path !== DISK_DIR;
}

/** A tar entry: header plus body stream (tar-stream's entry). */
export type TarEntry = Readable & { readonly header: tar.Header };

/** An open layer: entries one at a time, and the promise of the whole blob having been read. */
export interface OpenLayer {
  readonly descriptor: Descriptor;
  /** The next entry, or undefined at the end. Skip an entry with `entry.resume()`. */
  next(): Promise<TarEntry | undefined>;
  /** Settles when the blob is read to its end and its digest checked. */
  readonly done: Promise<void>;
  /** Tears the layer down (idempotent). */
  destroy(err?: Error): void;
}

/** Maps a failure inside the layer pipeline to a CdiError naming the layer. */
export function layerError(err: unknown, digest: string): CdiError {
  if (isCdiError(err)) return err;
  const code = errorCode(err) ?? '';
  const msg = errorMessage(err);
  if (code.startsWith('Z_') || /zstd|decompress/i.test(msg)) {
    return new CdiError(ErrorCodes.DecompressFailed, `layer ${digest}: ${msg}`, { cause: err });
  }
  if (/end of data|header|tar|format/i.test(msg)) {
    return new CdiError(ErrorCodes.ArchiveInvalid, `layer ${digest}: ${msg}`, { cause: err });
  }
  return new CdiError(ErrorCodes.RegistryPullFailed, `reading layer ${digest}: ${msg}`, {
    cause: err,
    retryable: true,
  });
}

/** Starts reading a layer blob through the digest check and the decompressor into tar-stream. */
export function openLayer(descriptor: Descriptor, blob: Readable, signal: AbortSignal): OpenLayer {
  const compression = layerCompression(descriptor.mediaType);
  const decompressor = createDecompressor(compression);
  // A compressed layer's bytes end in its decoder, which frees them once consumed; an
  // uncompressed one goes on to the tar parser, which hands out slices of them.
  const verifier = new DigestVerifier({
    digest: descriptor.digest,
    size: descriptor.size,
    handOver: decompressor !== undefined,
  });
  const extract = tar.extract();
  const stages: (NodeJS.ReadableStream | NodeJS.WritableStream)[] = [blob, verifier];
  if (decompressor !== undefined) stages.push(decompressor);
  const done = (pipeline as (...s: unknown[]) => Promise<void>)(...stages, extract, { signal });
  let pipelineError: unknown;
  const settled = done.catch((err: unknown) => {
    pipelineError = err;
    throw layerError(err, descriptor.digest);
  });
  // Observed here so an early failure is never an unhandled rejection; callers await `done`.
  settled.catch(() => undefined);
  const it = extract[Symbol.asyncIterator]();
  return {
    descriptor,
    async next() {
      try {
        const r = await it.next();
        return r.done === true ? undefined : (r.value as unknown as TarEntry);
      } catch (err) {
        // The pipeline's first error is the real cause (the extract only sees "premature close").
        await settled.catch(() => undefined);
        throw layerError(pipelineError ?? err, descriptor.digest);
      }
    },
    done: settled,
    destroy(err?: Error) {
      blob.destroy(err);
      extract.destroy(err);
    },
  };
}
