// SPDX-License-Identifier: Apache-2.0
/**
 * The user's side of uploads in the sandbox: `cdi upload` (virtctl image-upload's equivalent)
 * creating a DataVolume or a bare upload PVC, finding the proxy through CDIConfig, minting its
 * token through the aggregated API and uploading with resumption across a cut network; a curl
 * upload dropped at 90% and resumed with HEAD + Content-Range; and a browser form upload.
 * Every disk ends byte-identical to qemu-img's conversion.
 */
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compressFile } from '../fixtures/index.js';
import { startFormUploader } from '../helpers/browser-form.js';
import { runCdi } from '../helpers/cdi-cli.js';
import { startCuttingProxy } from '../helpers/cutting-proxy.js';
import { sameDisk, volumeData, waitForPhase, waitForPvc } from './controller-harness.js';
import {
  curl,
  expectUploaded,
  mintToken,
  readyUploadDv,
  startUploadEnv,
  type UploadEnv,
} from './upload-harness.js';

let env: UploadEnv;

beforeAll(async () => {
  env = await startUploadEnv();
}, 120_000);

afterAll(async () => {
  await env.stop();
});

function cdiUpload(args: readonly string[]) {
  return runCdi(
    [
      'upload',
      '--kubeconfig',
      env.sandbox.kubeconfigPath,
      '--namespace',
      'default',
      '--ca-file',
      env.caFile,
      ...args,
    ],
    {},
    120_000,
  );
}

function proxyPort(): number {
  return Number(new URL(env.proxyUrl).port);
}

describe('cdi upload', () => {
  it('creates the DataVolume, finds the proxy in CDIConfig, uploads a qcow2 and waits for Succeeded', async () => {
    const run = await cdiUpload(['--dv', 'cli-qcow2', '--size', '64Mi', '--file', env.qcow2]);
    expect(run.code, run.stderr).toBe(0);
    await expectUploaded(env, 'cli-qcow2', env.raw);
  });

  it("takes virtctl's spelling, and refuses at once to upload again into a Succeeded DataVolume", async () => {
    const first = await cdiUpload([
      'dv',
      'cli-virtctl',
      '--size',
      '64Mi',
      '--image-path',
      env.qcow2,
    ]);
    expect(first.code, first.stderr).toBe(0);
    await expectUploaded(env, 'cli-virtctl', env.raw);
    const again = await cdiUpload([
      'dv',
      'cli-virtctl',
      '--image-path',
      env.qcow2,
      '--wait-secs',
      '600',
    ]);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toEqual([
      'cdi upload: DataVolume default/cli-virtctl has already been uploaded (phase Succeeded); delete it or choose another name',
    ]);
  });

  it('uploads a gzip-wrapped raw into a bare PVC, asynchronously', async () => {
    const gz = await compressFile(env.raw, join(env.dir, 'disk.raw.gz'), 'gzip');
    const run = await cdiUpload(['--pvc', 'cli-pvc', '--size', '64Mi', '--file', gz, '--async']);
    expect(run.code, run.stderr).toBe(0);
    const pvc = await waitForPvc(
      env,
      'default',
      'cli-pvc',
      (p) => p.metadata?.annotations?.['cdi.kubevirt.io/storage.pod.phase'] === 'Succeeded',
    );
    expect(pvc.metadata?.annotations?.['cdi.kubevirt.io/storage.upload.target']).toBeDefined();
    expect(await sameDisk(env.raw, await volumeData(env, 'default', 'cli-pvc'))).toBe(true);
  });

  it('resumes by itself when the network is cut mid-upload', async () => {
    const relay = await startCuttingProxy({ targetPort: proxyPort(), cutAfter: 4 * 1024 * 1024 });
    try {
      const run = await cdiUpload([
        '--dv',
        'cli-cut',
        '--size',
        '64Mi',
        '--file',
        env.raw,
        '--uploadproxy-url',
        `https://127.0.0.1:${relay.port}`,
      ]);
      expect(run.code, run.stderr).toBe(0);
      expect(relay.cuts()).toBe(1);
    } finally {
      await relay.close();
    }
    await expectUploaded(env, 'cli-cut', env.raw);
  });

  it('--checksum: a wrong one fails with one line and keeps nothing; the right one succeeds', async () => {
    const sha256 = createHash('sha256')
      .update(await readFile(env.qcow2))
      .digest('hex');
    const wrong = await cdiUpload([
      ...['--dv', 'cli-sum', '--size', '64Mi', '--file', env.qcow2],
      ...['--checksum', `sha256:${'0'.repeat(64)}`],
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/cdi upload: .*checksum mismatch/);
    await waitForPhase(env, 'default', 'cli-sum', 'UploadReady');
    const right = await cdiUpload([
      ...['--dv', 'cli-sum', '--file', env.qcow2, '--checksum', `sha256:${sha256}`],
    ]);
    expect(right.code, right.stderr).toBe(0);
    await expectUploaded(env, 'cli-sum', env.raw);
  });

  it('fails with one clear line when the volume does not exist and --no-create', async () => {
    const run = await cdiUpload(['--dv', 'cli-none', '--no-create', '--file', env.raw]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/cli-none does not exist/);
  });
});

describe('a curl upload dropped at 90%', () => {
  it('resumes from the offset HEAD reports and ends byte-identical', async () => {
    await readyUploadDv(env, 'curl-resume');
    const token = await mintToken(env, 'curl-resume');
    const { size } = await stat(env.qcow2);
    const relay = await startCuttingProxy({
      targetPort: proxyPort(),
      cutAfter: Math.floor(size * 0.9),
    });
    const auth = ['-H', `Authorization: Bearer ${token}`];
    try {
      const dropped = await curl(env, [
        ...auth,
        '--data-binary',
        `@${env.qcow2}`,
        `https://127.0.0.1:${relay.port}/v1beta1/upload`,
      ]);
      expect(dropped.status).not.toBe(200);
      expect(relay.cuts()).toBe(1);
    } finally {
      await relay.close();
    }
    // HEAD answers 503 until the server notices the drop, then the durable offset.
    let offset = -1;
    await expect
      .poll(
        async () => {
          const head = await curl(env, [...auth, '-I', `${env.proxyUrl}/v1beta1/upload`]);
          const m = /upload-offset:\s*(\d+)/i.exec(head.body);
          offset = m?.[1] === undefined ? -1 : Number(m[1]);
          return head.status;
        },
        { timeout: 15_000 },
      )
      .toBe(200);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(size * 0.9);
    const rest = join(env.dir, 'rest.bin');
    await writeFile(rest, (await readFile(env.qcow2)).subarray(offset));
    const resumed = await curl(env, [
      ...auth,
      '-X',
      'PUT',
      '-H',
      `Content-Range: bytes ${offset}-${size - 1}/${size}`,
      '--data-binary',
      `@${rest}`,
      `${env.proxyUrl}/v1beta1/upload`,
    ]);
    expect(resumed.status, resumed.body).toBe(200);
    await expectUploaded(env, 'curl-resume', env.raw);
  });
});

describe('browser form upload', () => {
  it('headless Chromium posts the form through CORS into a DataVolume', async () => {
    await readyUploadDv(env, 'browser');
    const browser = await startFormUploader();
    try {
      const status = await browser.upload({
        proxyUrl: env.proxyUrl,
        token: await mintToken(env, 'browser'),
        file: env.qcow2,
      });
      expect(status).toBe('200');
    } finally {
      await browser.close();
    }
    await expectUploaded(env, 'browser', env.raw);
  });
});
