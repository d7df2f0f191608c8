// SPDX-License-Identifier: Apache-2.0
// OCI layers: a directory (or a ready tar) becomes a gzip blob in an OCI layout's blobs/sha256/,
// with the digests the manifest (compressed) and the config's rootfs.diff_ids (uncompressed) name.
// Tars are written in a fixed order with fixed owners and times, so the same tree gives the
// same digests.
/* eslint-disable @typescript-eslint/explicit-function-return-type -- plain JavaScript, no type syntax */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export const LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** Writes `dir`'s content as a reproducible tar (root-owned, times `epoch`) to `tarFile`. */
export function tarDirectory(dir, tarFile, epoch) {
  execFileSync('tar', [
    '--create',
    `--file=${tarFile}`,
    `--directory=${dir}`,
    '--sort=name',
    `--mtime=@${epoch}`,
    '--clamp-mtime',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '.',
  ]);
}

async function sha256OfFile(file) {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/**
 * Compresses `tarFile` into the layout's blobs (pigz -n: no name or time in the header, the same
 * bytes for the same input) and returns the layer's descriptor and its diff_id.
 */
export async function addLayer(layoutDir, tarFile) {
  const blobs = join(layoutDir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const diffId = `sha256:${await sha256OfFile(tarFile)}`;
  const partial = join(blobs, 'layer.part');
  const hash = createHash('sha256');
  const pigz = spawn('pigz', ['-n', '-6', '-c', tarFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve, reject) => {
    pigz.on('error', reject);
    pigz.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`pigz exited with ${code}`)),
    );
  });
  const out = createWriteStream(partial);
  pigz.stdout.on('data', (chunk) => hash.update(chunk));
  await Promise.all([pipeline(pigz.stdout, out), exited]);
  const digest = hash.digest('hex');
  renameSync(partial, join(blobs, digest));
  return {
    descriptor: {
      mediaType: LAYER_MEDIA_TYPE,
      digest: `sha256:${digest}`,
      size: statSync(join(blobs, digest)).size,
    },
    diffId,
  };
}

/**
 * {@link addLayer} for a tar that does not change between builds (the cached root filesystem):
 * its blob and descriptor are kept next to it, so it is compressed once.
 */
export async function addCachedLayer(layoutDir, tarFile) {
  const blobCache = `${tarFile}.gz`;
  const metaCache = `${tarFile}.layer.json`;
  if (existsSync(blobCache) && existsSync(metaCache)) {
    const layer = JSON.parse(readFileSync(metaCache, 'utf8'));
    const blobs = join(layoutDir, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    copyFileSync(blobCache, join(blobs, layer.descriptor.digest.slice('sha256:'.length)));
    return layer;
  }
  const layer = await addLayer(layoutDir, tarFile);
  copyFileSync(
    join(layoutDir, 'blobs', 'sha256', layer.descriptor.digest.slice('sha256:'.length)),
    blobCache,
  );
  writeFileSync(metaCache, JSON.stringify(layer));
  return layer;
}
