// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run demo`: the README's first command. Generates a small VM disk (qcow2, gzip-wrapped, as
 * many mirrors publish them), serves it on 127.0.0.1, imports it with `cdi import` (progress bar
 * on a terminal) and checks the result against `qemu-img convert -O raw` of the same image; then
 * does the same through a DataVolume in the sandbox cluster and with `cdi upload` (`cluster.ts`).
 */
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  compressFile,
  makeRawImage,
  qemuConvertToRaw,
  qemuImg,
  sameContent,
} from '../fixtures/index.js';
import { startTestHttpServer } from '../helpers/http-server.js';
import { runClusterDemo } from './cluster.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CDI = join(ROOT, 'dist', 'cmd', 'cdi.js');
const MIB = 1024 * 1024;

function run(args: readonly string[]): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CDI, ...args], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise(code ?? 1));
  });
}

async function main(): Promise<void> {
  const work = join(ROOT, '.tmp', 'demo');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const raw = await makeRawImage(join(work, 'demo.raw'), 2048 * MIB, [
    { offset: 0, length: 16 * MIB },
    { offset: 700 * MIB, length: 48 * MIB, seed: 2 },
    { offset: 2047 * MIB, length: MIB, seed: 3 },
  ]);
  const qcow2 = join(work, 'demo.qcow2');
  await qemuImg('convert', '-O', 'qcow2', raw, qcow2);
  const gz = await compressFile(qcow2, `${qcow2}.gz`, 'gzip');
  const server = await startTestHttpServer({ files: { '/demo.qcow2.gz': { path: gz } } });
  try {
    const url = server.url('/demo.qcow2.gz');
    const dest = join(work, 'pvc', 'disk.img');
    process.stdout.write(`\n$ cdi import --source ${url} --dest ${dest} --size 3Gi\n`);
    if ((await run(['import', '--source', url, '--dest', dest, '--size', '3Gi'])) !== 0)
      throw new Error('import failed');
    process.stdout.write(`\n$ cdi info ${dest}\n`);
    await run(['info', dest]);
    const reference = await qemuConvertToRaw(qcow2, join(work, 'reference.raw'));
    await qemuImg('resize', '-f', 'raw', reference, '3072M');
    const same = await sameContent(dest, reference);
    process.stdout.write(
      `\nbyte-identical to qemu-img convert -O raw (grown to the claim): ${same ? 'yes' : 'NO'}\n`,
    );
    if (!same) process.exitCode = 1;
  } finally {
    await server.close();
  }
  // The DataVolume asks for 3Gi through the storage API; the claim is inflated by the filesystem
  // overhead, so the disk grows to 3Gi: the same reference applies.
  if (!(await runClusterDemo(gz, join(work, 'reference.raw')))) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
