// SPDX-License-Identifier: Apache-2.0
/**
 * Uploads that must stop: an image too large for its claim is answered 400 with the reason
 * through the real proxy (not a 502 from a reset connection), logged by the upload server, and
 * the server stays ready; a client that stops sending is given up on after the idle timeout, its
 * journaled bytes kept for a resume, with the reason logged.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { request } from 'undici';
import { createLogger } from '../../common/logger.js';
import { parseUploadRefusal } from '../../controller/progress-scraper.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compressFile, makeTempDir, qemuImg, sameContent } from '../fixtures/index.js';
import { createUploadPki, type UploadPki } from '../helpers/upload-pki.js';
import { startUploadStack, type UploadStack } from '../helpers/upload-stack.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let pki: UploadPki;
let tmp: { dir: string; cleanup: () => Promise<void> };
let stack: UploadStack | undefined;
const images: Record<string, string> = {};

beforeAll(async () => {
  pki = await createUploadPki();
  tmp = await makeTempDir('cdi-upload-limits-');
  images['raw'] = join(tmp.dir, 'big.raw');
  await writeFile(images['raw'], randomBytes(48 * MiB));
  images['raw.gz'] = await compressFile(images['raw'], join(tmp.dir, 'big.raw.gz'), 'gzip');
  images['qcow2'] = join(tmp.dir, 'big.qcow2');
  await qemuImg('convert', '-f', 'raw', '-O', 'qcow2', images['raw'], images['qcow2']);
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
    { maxBuffer: 1 << 20 },
  );
  const lines = stdout.split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

describe('an upload too large for its claim', () => {
  it.each([
    { image: 'raw', style: 'binary' },
    { image: 'raw', style: 'chunked' },
    { image: 'raw.gz', style: 'binary' },
    { image: 'qcow2', style: 'binary' },
  ])('$image ($style) → 400 with the reason through the proxy', async ({ image, style }) => {
    const lines: string[] = [];
    stack = await startUploadStack(pki, {
      requestedSize: 8 * MiB,
      ownerUid: 'dv-uid',
      logger: createLogger({ component: 'upload', write: (l) => void lines.push(l) }),
    });
    const token = await stack.token();
    const res = await curl([
      '-H',
      `Authorization: Bearer ${token}`,
      ...(style === 'chunked' ? ['-H', 'Transfer-Encoding: chunked'] : []),
      '--data-binary',
      `@${images[image]}`,
      `${stack.proxy.url}/v1beta1/upload`,
    ]);
    expect(res.status).toBe(400);
    expect(res.body).toMatch(
      /^Saving stream failed: effective image size is larger than the reported available storage: /,
    );
    // Logged by the upload server, and the proxy did not see a broken connection.
    expect(lines.join('\n')).toMatch(/"level":"error","msg":"Saving stream failed".*available/);
    expect(lines.join('\n')).not.toMatch(/upload server connection failed/);
    // The reason is served for the controller, which shows it on the DataVolume.
    const metrics = await request(`${stack.server.url}/metrics`, { dispatcher: stack.dispatcher });
    expect(parseUploadRefusal(await metrics.body.text())).toBe(res.body.trim());
    // The server stays ready for another upload.
    const again = await request(`${stack.proxy.url}/v1beta1/upload`, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${token}` },
      dispatcher: stack.dispatcher,
    });
    await again.body.dump();
    expect(again.statusCode).toBe(200);
  });
});

describe('a client that stops sending', () => {
  it('is given up after the idle timeout, saying why; its bytes are kept and the upload resumes', async () => {
    const lines: string[] = [];
    stack = await startUploadStack(pki, {
      idleTimeoutMs: 300,
      logger: createLogger({ component: 'upload', write: (l) => void lines.push(l) }),
    });
    const token = await stack.token();
    const image = await readFile(images['raw']!);
    const auth = { authorization: `Bearer ${token}` };
    const body = new PassThrough();
    const first = request(`${stack.proxy.url}/v1beta1/upload`, {
      method: 'POST',
      headers: { ...auth, 'content-length': String(image.length) },
      body,
      dispatcher: stack.dispatcher,
    }).catch((err: unknown) => err);
    const dropped = stack.nextDrop();
    body.write(image.subarray(0, 4 * MiB));
    // ... and nothing more: the server gives up after its idle timeout.
    const durable = await dropped;
    expect(durable).toBe(4 * MiB);
    expect(lines.join('\n')).toMatch(
      /upload connection dropped; keeping what was received for a resume.*the upload client sent nothing for 300 ms/,
    );
    body.destroy();
    await first;

    const head = await request(`${stack.proxy.url}/v1beta1/upload`, {
      method: 'HEAD',
      headers: auth,
      dispatcher: stack.dispatcher,
    });
    await head.body.dump();
    expect(head.headers['upload-offset']).toBe(String(durable));
    const rest = await request(`${stack.proxy.url}/v1beta1/upload`, {
      method: 'PUT',
      headers: {
        ...auth,
        'content-range': `bytes ${durable}-${image.length - 1}/${image.length}`,
      },
      body: image.subarray(durable),
      dispatcher: stack.dispatcher,
    });
    expect(await rest.body.text()).toBe('');
    expect(rest.statusCode).toBe(200);
    await stack.server.done;
    expect(await sameContent(stack.diskPath, images['raw']!)).toBe(true);
  });
});
