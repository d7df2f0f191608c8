// SPDX-License-Identifier: Apache-2.0
/**
 * The cluster half of `npm run demo`: a sandbox Kubernetes API with the controller, the token API
 * and the upload proxy; a DataVolume applied with the real kubectl, its phase and progress printed
 * as `kubectl get dv` shows them; then the same image uploaded with `cdi upload` (virtctl
 * image-upload's equivalent). Each volume's disk is compared with `qemu-img convert -O raw`.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { qemuImg } from '../fixtures/index.js';
import { startTestHttpServer } from '../helpers/http-server.js';
import { startSandbox } from '../sandbox/index.js';
import { kubectl, type KubectlResult } from '../sandbox/testing.js';
import type { Sandbox } from '../sandbox/index.js';
import { CDI_BIN } from '../helpers/cdi-cli.js';

const DATAVOLUME = (url: string): string => `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: demo-disk
spec:
  source:
    http:
      url: ${url}
  storage:
    resources:
      requests:
        storage: 3Gi
`;

/** Polls `kubectl get dv NAME` and prints each new state; resolves with the last line. */
async function followDv(sandbox: Sandbox, name: string): Promise<string> {
  process.stdout.write(`$ kubectl get dv ${name}   (polled)\n`);
  let last = '';
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const got: KubectlResult = await kubectl(sandbox, ['get', 'dv', name, '--no-headers']);
    const line = got.stdout.trim().replace(/\s+\S+$/, ''); // drop the AGE column
    if (line !== last) process.stdout.write(`${got.stdout.trim()}\n`);
    last = line;
    if (/\bSucceeded\b|\bFailed\b/.test(line)) break;
    await delay(250);
  }
  return last;
}

/** Prints `qemu-img info` of a DataVolume's disk and compares it with the reference. */
async function compareVolume(sandbox: Sandbox, name: string, reference: string): Promise<boolean> {
  const pvc = await kubectl(sandbox, ['get', 'pvc', name, '-o', 'jsonpath={.spec.volumeName}']);
  const pv = await kubectl(sandbox, [
    'get',
    'pv',
    pvc.stdout.trim(),
    '-o',
    'jsonpath={.spec.hostPath.path}',
  ]);
  if (pv.stdout.trim() === '') {
    process.stdout.write(`\nno volume for ${name}: ${pvc.stderr}${pv.stderr}\n`);
    return false;
  }
  const disk = join(pv.stdout.trim(), 'disk.img');
  process.stdout.write(`\nthe volume's disk: ${disk}\n`);
  await qemuImg('info', disk).then((out) => process.stdout.write(out));
  const compared = await qemuImg('compare', '-f', 'raw', '-F', 'raw', disk, reference).then(
    () => true,
    () => false,
  );
  process.stdout.write(
    `qemu-img compare with the reference conversion: ${compared ? 'identical' : 'DIFFERENT'}\n`,
  );
  return compared;
}

/** Runs `cdi upload` with its progress bar on this terminal; resolves with the exit code. */
function cdiUpload(args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CDI_BIN, 'upload', ...args], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

/** Runs the cluster demo with an image already generated; returns true when both disks matched. */
export async function runClusterDemo(image: string, reference: string): Promise<boolean> {
  const server = await startTestHttpServer({ files: { '/demo.qcow2.gz': { path: image } } });
  const sandbox = await startSandbox({ controller: true, uploadProxy: true });
  try {
    process.stdout.write(`\nsandbox cluster up; kubeconfig: ${sandbox.kubeconfigPath}\n`);
    process.stdout.write(
      `$ kubectl apply -f demo-dv.yaml   (http source ${server.url('/demo.qcow2.gz')})\n`,
    );
    const applied = await kubectl(sandbox, ['apply', '-f', '-'], {
      input: DATAVOLUME(server.url('/demo.qcow2.gz')),
    });
    process.stdout.write(applied.stdout + applied.stderr);
    const imported = /\bSucceeded\b/.test(await followDv(sandbox, 'demo-disk'));
    const importSame = await compareVolume(sandbox, 'demo-disk', reference);

    const caFile = join(sandbox.dataDir, 'uploadproxy-ca.crt');
    await writeFile(caFile, sandbox.caPem);
    process.stdout.write(
      `\n$ cdi upload --dv demo-upload --size 3Gi --file ${image}   (proxy ${sandbox.uploadProxyUrl ?? '?'})\n`,
    );
    const code = await cdiUpload([
      '--kubeconfig',
      sandbox.kubeconfigPath,
      '--namespace',
      'default',
      '--dv',
      'demo-upload',
      '--size',
      '3Gi',
      '--file',
      image,
      '--ca-file',
      caFile,
    ]);
    const uploaded = code === 0 && /\bSucceeded\b/.test(await followDv(sandbox, 'demo-upload'));
    const uploadSame = await compareVolume(sandbox, 'demo-upload', reference);
    return imported && importSame && uploaded && uploadSame;
  } finally {
    await sandbox.stop();
    await server.close();
  }
}
