// SPDX-License-Identifier: Apache-2.0
// The OCI image layout (image-spec v1.1): config and manifest blobs, index.json naming the image,
// and the whole layout packed as one uncompressed tar (what skopeo calls an oci-archive).
/* eslint-disable @typescript-eslint/explicit-function-return-type -- plain JavaScript, no type syntax */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tarDirectory } from './layer.mjs';

const CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';
const MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';

function addJsonBlob(layoutDir, mediaType, value) {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = createHash('sha256').update(bytes).digest('hex');
  const blobs = join(layoutDir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  writeFileSync(join(blobs, digest), bytes);
  return { mediaType, digest: `sha256:${digest}`, size: bytes.length };
}

/**
 * Writes config, manifest, index.json and oci-layout for `layers` (from addLayer, base first).
 * `image` holds name ("cdi-ts/cdi"), tag, created (ISO date), and the runtime config (User,
 * Entrypoint, Env, WorkingDir, Labels). Returns the manifest's descriptor.
 */
export function writeLayout(layoutDir, layers, image) {
  const config = addJsonBlob(layoutDir, CONFIG_MEDIA_TYPE, {
    created: image.created,
    architecture: 'amd64',
    os: 'linux',
    config: image.config,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((l) => ({ created: image.created, created_by: l.createdBy })),
  });
  const manifest = addJsonBlob(layoutDir, MANIFEST_MEDIA_TYPE, {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPE,
    config,
    layers: layers.map((l) => l.descriptor),
    annotations: { 'org.opencontainers.image.created': image.created },
  });
  const descriptor = {
    ...manifest,
    annotations: {
      // The tag (what `skopeo ... oci-archive:FILE:TAG` selects) and the full name for loaders
      // that read it (containerd, docker load).
      'org.opencontainers.image.ref.name': image.tag,
      'io.containerd.image.name': `docker.io/${image.name}:${image.tag}`,
    },
  };
  writeFileSync(
    join(layoutDir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: [descriptor] }),
  );
  writeFileSync(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return descriptor;
}

/** Packs the layout as an oci-archive tar. */
export function packArchive(layoutDir, file, epoch) {
  tarDirectory(layoutDir, file, epoch);
}
