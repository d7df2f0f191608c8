// SPDX-License-Identifier: Apache-2.0
/**
 * The cluster half of `npm run demo`: a sandbox Kubernetes API with the controller, a DataVolume
 * applied with the real kubectl, its phase and progress printed as `kubectl get dv` shows them,
 * and the volume's disk compared with `qemu-img convert -O raw` of the source.
 */
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { qemuImg } from '../fixtures/index.js';
import { startTestHttpServer } from '../helpers/http-server.js';
import { startSandbox } from '../sandbox/index.js';
import { kubectl } from '../sandbox/testing.js';

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

/** Runs the cluster demo with an image already generated; returns true when the disk matched. */
export async function runClusterDemo(image: string, reference: string): Promise<boolean> {
  const server = await startTestHttpServer({ files: { '/demo.qcow2.gz': { path: image } } });
  const sandbox = await startSandbox({ controller: true });
  try {
    process.stdout.write(`\nsandbox cluster up; kubeconfig: ${sandbox.kubeconfigPath}\n`);
    process.stdout.write(
      `$ kubectl apply -f demo-dv.yaml   (http source ${server.url('/demo.qcow2.gz')})\n`,
    );
    const applied = await kubectl(sandbox, ['apply', '-f', '-'], {
      input: DATAVOLUME(server.url('/demo.qcow2.gz')),
    });
    process.stdout.write(applied.stdout + applied.stderr);
    process.stdout.write('$ kubectl get dv demo-disk   (polled)\n');
    let last = '';
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const got = await kubectl(sandbox, ['get', 'dv', 'demo-disk', '--no-headers']);
      const line = got.stdout.trim().replace(/\s+\S+$/, ''); // drop the AGE column
      if (line !== last) process.stdout.write(`${got.stdout.trim()}\n`);
      last = line;
      if (/\bSucceeded\b|\bFailed\b/.test(line)) break;
      await delay(250);
    }
    const pv = await kubectl(sandbox, [
      'get',
      'pv',
      '-o',
      'jsonpath={.items[0].spec.hostPath.path}',
    ]);
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
    return compared && /\bSucceeded\b/.test(last);
  } finally {
    await sandbox.stop();
    await server.close();
  }
}
