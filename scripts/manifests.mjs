#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// `npm run manifests -- [--image REF] [--out FILE]`: writes the release file (default
// cdi-install.yaml): deploy/ rendered by `kubectl kustomize` (CRDs, namespace, RBAC, the three
// Deployments, Services, APIService, webhook configurations and the CDI resource), with every
// reference to the image (the containers' `image` and the controller's IMPORTER_IMAGE and
// UPLOADSERVER_IMAGE) set to REF (default cdi-ts/cdi:latest, as deploy/ names it).
// `kubectl apply -f cdi-install.yaml` then does what `kubectl apply -k deploy/` does.
/* eslint-disable @typescript-eslint/explicit-function-return-type -- plain JavaScript, no type syntax */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { dump, loadAll } from 'js-yaml';
import { option } from './option.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
/** The image reference deploy/ is written with. */
export const DEPLOY_IMAGE = 'cdi-ts/cdi:latest';

/** A copy of `value` with every string equal to `from` replaced by `to`. */
function replaceString(value, from, to) {
  if (value === from) return to;
  if (Array.isArray(value)) return value.map((v) => replaceString(v, from, to));
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, replaceString(v, from, to)]),
    );
  return value;
}

/** The multi-document YAML of `deployDir` with the image set to `image`. */
export function renderManifests(deployDir, image) {
  if (!/^[a-z0-9][a-z0-9._/:@-]*$/.test(image))
    throw new Error(`--image ${JSON.stringify(image)}: not an image reference`);
  const rendered = execFileSync('kubectl', ['kustomize', deployDir], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const docs = loadAll(rendered).filter((d) => d !== null && typeof d === 'object');
  const header = `# CDI ${image}: kubectl apply -f this file (generated from deploy/ by npm run manifests)\n`;
  return (
    header +
    docs
      .map((d) => dump(replaceString(d, DEPLOY_IMAGE, image), { lineWidth: -1, noRefs: true }))
      .join('---\n')
  );
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const out = resolve(option('out', 'cdi-install.yaml'));
    const image = option('image', DEPLOY_IMAGE);
    writeFileSync(out, renderManifests(option('deploy', join(ROOT, 'deploy')), image));
    process.stdout.write(`${out}\n`);
  } catch (err) {
    process.stderr.write(`manifests: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
