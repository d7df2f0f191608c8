// SPDX-License-Identifier: Apache-2.0
/**
 * Uploads end to end in the sandbox, with curl as virtctl and the console would send them: a
 * DataVolume with `source.upload` reaches UploadReady (controller: Secret, Service, upload pod),
 * a token comes from an `UploadTokenRequest` through the aggregated API, the proxy forwards over
 * mTLS, and the DataVolume ends Succeeded with the disk byte-identical to qemu-img's conversion.
 * Plus every refusal: bad, forged, expired and wrong-PVC tokens, a concurrent upload, an image
 * too large for the claim, a PVC that does not exist.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import { COMPRESSORS, compressFile, makeRawImage, qemuImg } from '../fixtures/index.js';
import {
  generateTokenKeys,
  loadPrivateKey,
  signUploadToken,
} from '../../uploadproxy/protocol/token.js';
import { waitForDv, waitForPhase, waitForPvc } from './controller-harness.js';
import {
  curl,
  expectUploaded,
  mintToken,
  readyUploadDv,
  startUploadEnv,
  type UploadEnv,
} from './upload-harness.js';

const MiB = 1024 * 1024;
let env: UploadEnv;

beforeAll(async () => {
  env = await startUploadEnv();
}, 120_000);

afterAll(async () => {
  await env.stop();
});

function bearer(token: string): string[] {
  return ['-H', `Authorization: Bearer ${token}`];
}

describe('uploads with curl into a DataVolume', () => {
  it('raw, sync: 200, Succeeded, identical, and the pod, Service and Secret are gone', async () => {
    await readyUploadDv(env, 'up-raw');
    const pvc = await waitForPvc(
      env,
      'default',
      'up-raw',
      (p) => p.metadata?.annotations?.[Annotations.PodReady] === 'true',
    );
    expect(pvc.metadata?.annotations?.[Annotations.UploadPodName]).toBe('cdi-upload-up-raw');
    const token = await mintToken(env, 'up-raw');
    const res = await curl(env, [
      ...bearer(token),
      '--data-binary',
      `@${env.raw}`,
      `${env.proxyUrl}/v1beta1/upload`,
    ]);
    expect(res.status, res.body + res.stderr).toBe(200);
    const dv = await expectUploaded(env, 'up-raw', env.raw);
    expect(dv.status?.progress).toBe('100.0%');
    const gone = async (read: () => Promise<unknown>): Promise<boolean> =>
      read().then(
        () => false,
        () => true,
      );
    await expect
      .poll(() =>
        gone(() => env.core.readNamespacedPod({ namespace: 'default', name: 'cdi-upload-up-raw' })),
      )
      .toBe(true);
    expect(
      await gone(() =>
        env.core.readNamespacedService({ namespace: 'default', name: 'cdi-upload-up-raw' }),
      ),
    ).toBe(true);
    expect(
      await gone(() =>
        env.core.readNamespacedSecret({ namespace: 'default', name: 'cdi-upload-up-raw' }),
      ),
    ).toBe(true);
    const events = await env.core.listNamespacedEvent({ namespace: 'default' });
    expect(
      events.items.some(
        (e) => e.reason === 'UploadSucceeded' && e.involvedObject.name === 'up-raw',
      ),
    ).toBe(true);
    // A second upload after success is refused with CDI's message.
    const again = await curl(env, [
      ...bearer(await mintToken(env, 'up-raw')),
      '--data-binary',
      'x',
      `${env.proxyUrl}/v1beta1/upload`,
    ]);
    expect(again.status).toBe(503);
    expect(again.body).toMatch(/already finished uploading/);
  });

  it('qcow2 sent chunked to the async endpoint', async () => {
    await readyUploadDv(env, 'up-chunked');
    const res = await curl(
      env,
      [
        ...bearer(await mintToken(env, 'up-chunked')),
        '-T',
        '-',
        `${env.proxyUrl}/v1beta1/upload-async`,
      ],
      env.qcow2,
    );
    expect(res.status, res.body + res.stderr).toBe(200);
    await expectUploaded(env, 'up-chunked', env.raw);
  });

  it('xz-wrapped qcow2 as a multipart form on the v1alpha1 path', async () => {
    await readyUploadDv(env, 'up-form');
    const xz = await compressFile(env.qcow2, join(env.dir, 'disk.qcow2.xz'), 'xz');
    const res = await curl(env, [
      ...bearer(await mintToken(env, 'up-form')),
      '-F',
      `file=@${xz}`,
      `${env.proxyUrl}/v1alpha1/upload-form`,
    ]);
    expect(res.status, res.body + res.stderr).toBe(200);
    await expectUploaded(env, 'up-form', env.raw);
  });

  it.each([
    { what: 'gzip-wrapped raw', compressor: 'gzip', image: 'raw' },
    { what: 'zstd-wrapped qcow2', compressor: 'zstd', image: 'qcow2' },
  ] as const)('$what into a block volume', async ({ compressor, image }) => {
    const name = `up-block-${compressor}`;
    await readyUploadDv(env, name, { block: true });
    const source = image === 'raw' ? env.raw : env.qcow2;
    const file = await compressFile(source, `${source}.${COMPRESSORS[compressor].ext}`, compressor);
    const res = await curl(env, [
      ...bearer(await mintToken(env, name)),
      '--data-binary',
      `@${file}`,
      `${env.proxyUrl}/v1beta1/upload`,
    ]);
    expect(res.status, res.body + res.stderr).toBe(200);
    await expectUploaded(env, name, env.raw);
  });
});

describe('refusals', () => {
  it('bad, forged, expired and wrong-PVC tokens get 401; the volume still takes a good upload', async () => {
    await readyUploadDv(env, 'up-tokens');
    const keyFile = join(env.dir, 'id_rsa');
    const signing = await env.core.readNamespacedSecret({
      namespace: 'cdi',
      name: 'cdi-api-signing-key',
    });
    await writeFile(keyFile, Buffer.from(signing.data?.['id_rsa'] ?? '', 'base64'));
    const realKey = await loadPrivateKey(keyFile);
    const target = { namespace: 'default', pvc: 'up-tokens' };
    const cases = [
      { what: 'not a JWT', token: 'abc', headers: [] as string[] },
      {
        what: 'forged (another key)',
        token: await signUploadToken((await generateTokenKeys()).privateKey, target),
        headers: [],
      },
      {
        what: 'expired',
        token: await signUploadToken(realKey, target, {
          now: Math.floor(Date.now() / 1000) - 3600,
        }),
        headers: [],
      },
      {
        what: 'for another PVC than the one named',
        token: await mintToken(env, 'someone-elses'),
        headers: ['-H', 'X-CDI-Upload-Target: default/up-tokens'],
      },
    ];
    for (const c of cases) {
      const res = await curl(env, [
        ...bearer(c.token),
        ...c.headers,
        '--data-binary',
        `@${env.raw}`,
        `${env.proxyUrl}/v1beta1/upload`,
      ]);
      expect(res.status, c.what).toBe(401);
    }
    const missing = await curl(env, ['--data-binary', 'x', `${env.proxyUrl}/v1beta1/upload`]);
    expect(missing.status).toBe(400);
    const ok = await curl(env, [
      ...bearer(await mintToken(env, 'up-tokens')),
      '--data-binary',
      `@${env.raw}`,
      `${env.proxyUrl}/v1beta1/upload`,
    ]);
    expect(ok.status, ok.body).toBe(200);
    await expectUploaded(env, 'up-tokens', env.raw);
  });

  it('a PVC that does not exist gets 503 with CDI’s message', async () => {
    const res = await curl(env, [
      ...bearer(await mintToken(env, 'no-such-pvc')),
      '--data-binary',
      'x',
      `${env.proxyUrl}/v1beta1/upload`,
    ]);
    expect(res.status).toBe(503);
    expect(res.body).toMatch(/PVC no-such-pvc that doesn&#39;t exist/);
  });

  it('a second upload while one runs gets 503, and the first completes', async () => {
    await readyUploadDv(env, 'up-busy');
    const token = await mintToken(env, 'up-busy');
    const url = `${env.proxyUrl}/v1beta1/upload`;
    // The first upload trickles (about 6 s), so the second arrives while it runs: the server
    // says an upload is attached by answering HEAD with 503.
    const first = curl(env, [
      ...bearer(token),
      '--limit-rate',
      '6M',
      '--data-binary',
      `@${env.raw}`,
      url,
    ]);
    await expect
      .poll(async () => (await curl(env, [...bearer(token), '-I', url])).status, {
        timeout: 10_000,
      })
      .toBe(503);
    const second = await curl(env, [...bearer(token), '--data-binary', `@${env.raw}`, url]);
    expect(second.status, second.body).toBe(503);
    // Beyond CDI (which shows N/A): the DataVolume reports the share received while it arrives.
    const midway = await waitForDv(env, 'default', 'up-busy', (dv) =>
      /^(?:[1-9]\d?)\.\d\d%$/.test(dv.status?.progress ?? ''),
    );
    expect(midway.status?.phase).toBe('UploadReady');
    const firstResult = await first;
    expect(firstResult.status, firstResult.body).toBe(200);
    await expectUploaded(env, 'up-busy', env.raw);
  });

  it('a truncated image sent async: the upload pod restarts, then a good upload succeeds', async () => {
    await readyUploadDv(env, 'up-broken');
    const truncated = join(env.dir, 'truncated.qcow2');
    const whole = await readFile(env.qcow2);
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
    const res = await curl(env, [
      ...bearer(await mintToken(env, 'up-broken')),
      '--data-binary',
      `@${truncated}`,
      `${env.proxyUrl}/v1beta1/upload-async`,
    ]);
    expect([200, 400]).toContain(res.status);
    // The server ends with the cause; the pod restarts, and the DataVolume counts it.
    const restarted = await waitForDv(
      env,
      'default',
      'up-broken',
      (dv) => (dv.status?.restartCount ?? 0) >= 1,
    );
    expect(restarted.status?.phase).not.toBe('Failed');
    await waitForPhase(env, 'default', 'up-broken', 'UploadReady');
    const ok = await curl(env, [
      ...bearer(await mintToken(env, 'up-broken')),
      '--data-binary',
      `@${env.qcow2}`,
      `${env.proxyUrl}/v1beta1/upload`,
    ]);
    expect(ok.status, ok.body).toBe(200);
    await expectUploaded(env, 'up-broken', env.raw);
  });

  it('an image too large for the claim gets 400; the DataVolume stays UploadReady for a retry', async () => {
    await readyUploadDv(env, 'up-big', { size: '16Mi' });
    const big = await makeRawImage(join(env.dir, 'big.raw'), 64 * MiB, [
      { offset: 0, length: MiB, seed: 5 },
    ]);
    const bigQcow2 = join(env.dir, 'big.qcow2');
    await qemuImg('convert', '-O', 'qcow2', big, bigQcow2);
    const token = await mintToken(env, 'up-big');
    const res = await curl(env, [
      ...bearer(token),
      '--data-binary',
      `@${bigQcow2}`,
      `${env.proxyUrl}/v1beta1/upload`,
    ]);
    expect(res.status).toBe(400);
    expect(res.body).toMatch(/larger than|too large|exceeds/i);
    await waitForPhase(env, 'default', 'up-big', 'UploadReady');
    const small = await makeRawImage(join(env.dir, 'small.raw'), 8 * MiB, [
      { offset: MiB, length: MiB, seed: 6 },
    ]);
    const ok = await curl(env, [
      ...bearer(await mintToken(env, 'up-big')),
      '--data-binary',
      `@${small}`,
      `${env.proxyUrl}/v1beta1/upload`,
    ]);
    expect(ok.status, ok.body).toBe(200);
    await expectUploaded(env, 'up-big', small);
  });
});
