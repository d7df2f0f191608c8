// SPDX-License-Identifier: Apache-2.0
/**
 * Uploads through the real proxy and upload server on 127.0.0.1 with curl (raw, chunked, PUT,
 * multipart) and the sync/async/form endpoints, each ending byte-identical to
 * `qemu-img convert -O raw`; then the refusals a user meets.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  compressFile,
  makeRawImage,
  makeTempDir,
  qemuConvertToRaw,
  qemuImg,
  sameContent,
} from '../fixtures/index.js';
import { createUploadPki, type UploadPki } from '../helpers/upload-pki.js';
import { startUploadStack, type UploadStack } from '../helpers/upload-stack.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let pki: UploadPki;
let tmp: { dir: string; cleanup: () => Promise<void> };
const images: Record<string, { path: string; reference: string }> = {};
let stack: UploadStack | undefined;

beforeAll(async () => {
  pki = await createUploadPki();
  tmp = await makeTempDir('cdi-upload-fixtures-');
  const raw = await makeRawImage(join(tmp.dir, 'disk.raw'), 24 * MiB, [
    { offset: 0, length: MiB },
    { offset: 9 * MiB + 512, length: 2 * MiB, seed: 3 },
    { offset: 24 * MiB - 4096, length: 4096, seed: 4 },
  ]);
  const qcow2 = join(tmp.dir, 'disk.qcow2');
  await qemuImg('convert', '-O', 'qcow2', raw, qcow2);
  const reference = await qemuConvertToRaw(qcow2, join(tmp.dir, 'reference.raw'));
  images['qcow2'] = { path: qcow2, reference };
  images['raw'] = { path: raw, reference };
  images['raw.xz'] = { path: await compressFile(raw, `${raw}.xz`, 'xz'), reference };
  images['qcow2.gz'] = { path: await compressFile(qcow2, `${qcow2}.gz`, 'gzip'), reference };
  images['raw.zst'] = { path: await compressFile(raw, `${raw}.zst`, 'zstd'), reference };
});

afterAll(async () => {
  await tmp.cleanup();
  await pki.cleanup();
});

afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function curl(args: readonly string[]): Promise<{ status: number; body: string }> {
  const { stdout } = await run(
    'curl',
    ['-sS', '--cacert', pki.caFile, '-w', '\n%{http_code}', ...args],
    {
      maxBuffer: 1 << 20,
    },
  );
  const lines = stdout.split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

describe('uploads end byte-identical to qemu-img convert', () => {
  it.each([
    { what: 'qcow2, sync, raw body', image: 'qcow2', path: '/v1beta1/upload', style: 'binary' },
    { what: 'xz raw, sync, raw body', image: 'raw.xz', path: '/v1beta1/upload', style: 'binary' },
    {
      what: 'qcow2, async, raw body',
      image: 'qcow2',
      path: '/v1beta1/upload-async',
      style: 'binary',
    },
    {
      what: 'gz qcow2, sync, chunked body',
      image: 'qcow2.gz',
      path: '/v1beta1/upload',
      style: 'chunked',
    },
    { what: 'zstd raw, curl -T (PUT)', image: 'raw.zst', path: '/v1beta1/upload', style: 'put' },
    { what: 'qcow2, form', image: 'qcow2', path: '/v1beta1/upload-form', style: 'form' },
    {
      what: 'xz raw, form async',
      image: 'raw.xz',
      path: '/v1beta1/upload-form-async',
      style: 'form',
    },
    { what: 'raw, v1alpha1 alias', image: 'raw', path: '/v1alpha1/upload', style: 'binary' },
  ])('$what', async ({ image, path, style }) => {
    stack = await startUploadStack(pki);
    const file = images[image]!;
    const token = await stack.token();
    const body =
      style === 'form'
        ? ['-F', 'note=ignored', '-F', `file=@${file.path}`]
        : style === 'put'
          ? ['-T', file.path]
          : style === 'chunked'
            ? ['-H', 'Transfer-Encoding: chunked', '--data-binary', `@${file.path}`]
            : ['--data-binary', `@${file.path}`];
    const res = await curl([
      '-H',
      `Authorization: Bearer ${token}`,
      ...body,
      `${stack.proxy.url}${path}`,
    ]);
    expect(res).toEqual({ status: 200, body: '' });
    const result = await stack.server.done;
    expect(result.size).toBe(24 * MiB);
    expect(await sameContent(stack.diskPath, file.reference)).toBe(true);
    const again = await curl([
      '-H',
      `Authorization: Bearer ${token}`,
      '--data-binary',
      `@${file.path}`,
      `${stack.proxy.url}${path}`,
    ]);
    expect(again.status).toBe(409);
  });
});

describe('refusals', () => {
  it.each([
    {
      what: 'no Authorization header',
      header: undefined,
      status: 400,
      text: /missing Authorization/,
    },
    { what: 'not a bearer token', header: 'Basic dXNlcjpwYXNz', status: 400, text: /malformed/ },
    {
      what: 'garbage token',
      header: 'Bearer abc.def.ghi',
      status: 401,
      text: /invalid upload token/,
    },
  ])('$what → $status', async ({ header, status, text }) => {
    stack = await startUploadStack(pki);
    const res = await request(`${stack.proxy.url}/v1beta1/upload`, {
      method: 'POST',
      body: 'x',
      headers: header === undefined ? {} : { authorization: header },
      dispatcher: stack.dispatcher,
    });
    expect(res.statusCode).toBe(status);
    expect(await res.body.text()).toMatch(text);
  });

  it.each([
    {
      what: 'expired token',
      make: (s: UploadStack) => s.token(undefined, { now: Math.floor(Date.now() / 1000) - 600 }),
      text: /exp/,
    },
    {
      what: 'forged token (another key)',
      make: async () => {
        const { generateTokenKeys, signUploadToken } =
          await import('../../uploadproxy/protocol/token.js');
        return signUploadToken((await generateTokenKeys()).privateKey, {
          namespace: 'default',
          pvc: 'disk',
        });
      },
      text: /signature/,
    },
    {
      what: 'clone token',
      make: (s: UploadStack) => s.token(undefined, { operation: 'Clone' }),
      text: /not for an upload/,
    },
  ])('$what → 401', async ({ make, text }) => {
    stack = await startUploadStack(pki);
    const res = await curl([
      '-H',
      `Authorization: Bearer ${await make(stack)}`,
      '--data-binary',
      'x',
      `${stack.proxy.url}/v1beta1/upload`,
    ]);
    expect(res.status).toBe(401);
    expect(res.body).toMatch(text);
  });

  it('token for another PVC: 401 when the client names its PVC, 503 otherwise', async () => {
    stack = await startUploadStack(pki);
    const token = await stack.token({ namespace: 'default', pvc: 'other' });
    const named = await curl([
      '-H',
      `Authorization: Bearer ${token}`,
      '-H',
      'X-CDI-Upload-Target: default/disk',
      '--data-binary',
      'x',
      `${stack.proxy.url}/v1beta1/upload`,
    ]);
    expect(named.status).toBe(401);
    expect(named.body).toMatch(/upload token is for PVC default\/other, not default\/disk/);
    const unnamed = await curl([
      '-H',
      `Authorization: Bearer ${token}`,
      '--data-binary',
      'x',
      `${stack.proxy.url}/v1beta1/upload`,
    ]);
    expect(unnamed.status).toBe(503);
    expect(unnamed.body).toMatch(/rejecting Upload Request for PVC other that doesn&#39;t exist/);
  });

  it('not ready → 503 with an escaped message after the bounded wait', async () => {
    stack = await startUploadStack(pki);
    stack.ready = false;
    const token = await stack.token();
    const res = await curl([
      '-H',
      `Authorization: Bearer ${token}`,
      '--data-binary',
      'x',
      `${stack.proxy.url}/v1beta1/upload`,
    ]);
    expect(res.status).toBe(503);
    expect(res.body).toMatch(
      /timed out waiting for the upload server of PVC default\/disk to be ready/,
    );
  });

  it('an image too large for the claim → 400 with a clear message, and the server stays ready', async () => {
    stack = await startUploadStack(pki, { requestedSize: 8 * MiB });
    const token = await stack.token();
    const res = await curl([
      '-H',
      `Authorization: Bearer ${token}`,
      '--data-binary',
      `@${images['qcow2']!.path}`,
      `${stack.proxy.url}/v1beta1/upload`,
    ]);
    expect(res.status).toBe(400);
    expect(res.body).toMatch(/^Saving stream failed: .*(larger|exceeds|too)/i);
    const again = await request(`${stack.proxy.url}/v1beta1/upload`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${token}` },
      dispatcher: stack.dispatcher,
    });
    expect(again.statusCode).toBe(200);
    expect(again.headers['upload-offset']).toBe('0');
  });

  it('a second concurrent upload → 503 while the first goes on', async () => {
    stack = await startUploadStack(pki);
    const token = await stack.token();
    const body = new PassThrough();
    const first = request(`${stack.proxy.url}/v1beta1/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-length': String(24 * MiB) },
      body,
      dispatcher: stack.dispatcher,
    });
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(images['raw']!.path);
    body.write(bytes.subarray(0, 4 * MiB));
    // The HEAD answers once the server journaled some bytes, so the upload is attached by then.
    for (;;) {
      const head = await request(`${stack.proxy.url}/v1beta1/upload`, {
        method: 'HEAD',
        headers: { authorization: `Bearer ${token}` },
        dispatcher: stack.dispatcher,
      });
      await head.body.dump();
      if (head.headers['upload-length'] !== undefined) break;
    }
    const second = await curl([
      '-H',
      `Authorization: Bearer ${token}`,
      '--data-binary',
      'x',
      `${stack.proxy.url}/v1beta1/upload`,
    ]);
    expect(second.status).toBe(503);
    expect(second.body).toMatch(/already in progress/);
    body.end(bytes.subarray(4 * MiB));
    const res = await first;
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(await sameContent(stack.diskPath, images['raw']!.reference)).toBe(true);
  });

  it('CORS preflight from another origin is allowed', async () => {
    stack = await startUploadStack(pki);
    const res = await request(`${stack.proxy.url}/v1beta1/upload-form`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://console.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
      dispatcher: stack.dispatcher,
    });
    await res.body.dump();
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://console.example');
    expect(res.headers['access-control-allow-methods']).toMatch(/POST/);
    expect(res.headers['access-control-allow-headers']).toBe('authorization');
  });

  it.each([
    { what: 'no client certificate', cert: undefined },
    { what: 'a client certificate from another CA', cert: 'stranger' },
  ])('the upload server refuses $what with 401', async ({ cert }) => {
    stack = await startUploadStack(pki);
    const tls =
      cert === undefined
        ? []
        : ['--cert', join(pki.dir, 'stranger.crt'), '--key', join(pki.dir, 'stranger.key')];
    const res = await curl([...tls, '--data-binary', 'x', `${stack.server.url}/v1beta1/upload`]);
    expect(res.status).toBe(401);
  });
});
