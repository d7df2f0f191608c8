// SPDX-License-Identifier: Apache-2.0
/**
 * Upload checksums (RFC 9530 `Repr-Digest`) through the real proxy and upload server: a matching
 * digest is verified and echoed; a wrong one is a 400 with nothing published, and the server
 * takes a correct upload afterwards; a resumed upload keeps its digest; `cdi upload --checksum`
 * sends it.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeQcow2Disk, makeTempDir, sameContent } from '../fixtures/index.js';
import { createUploadPki, type UploadPki } from '../helpers/upload-pki.js';
import { startUploadStack, type UploadStack } from '../helpers/upload-stack.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let pki: UploadPki;
let tmp: { dir: string; cleanup: () => Promise<void> };
let qcow2: string;
let reference: string;
let digest: string;
let stack: UploadStack | undefined;

beforeAll(async () => {
  pki = await createUploadPki();
  tmp = await makeTempDir('cdi-upload-checksum-');
  ({ qcow2, reference } = await makeQcow2Disk(tmp.dir, 'disk', 16 * MiB, [
    { offset: MiB, length: 3 * MiB, seed: 21 },
  ]));
  digest = `sha-256=:${createHash('sha256')
    .update(await readFile(qcow2))
    .digest('base64')}:`;
});

afterAll(async () => {
  await tmp.cleanup();
  await pki.cleanup();
});

afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function post(s: UploadStack, headers: Record<string, string>, body: Buffer) {
  const res = await request(`${s.proxy.url}/v1beta1/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await s.token()}`, ...headers },
    body,
    dispatcher: s.dispatcher,
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

describe('Repr-Digest on uploads', () => {
  it('a matching digest is verified, echoed, and the disk is byte-identical', async () => {
    stack = await startUploadStack(pki);
    const res = await post(stack, { 'repr-digest': digest }, await readFile(qcow2));
    expect(res.status, res.text).toBe(200);
    expect(res.headers['repr-digest']).toBe(digest);
    expect(await sameContent(stack.diskPath, reference)).toBe(true);
  });

  it('a wrong digest is a 400 naming the mismatch; nothing is published; a good upload follows', async () => {
    stack = await startUploadStack(pki);
    const wrong = `sha-256=:${createHash('sha256').update('other').digest('base64')}:`;
    const bad = await post(stack, { 'repr-digest': wrong }, await readFile(qcow2));
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/checksum mismatch: expected sha256:/);
    expect(existsSync(stack.diskPath)).toBe(false);
    const good = await post(stack, { 'repr-digest': digest }, await readFile(qcow2));
    expect(good.status, good.text).toBe(200);
    expect(await sameContent(stack.diskPath, reference)).toBe(true);
  });

  it('a malformed digest is refused before any byte is kept', async () => {
    stack = await startUploadStack(pki);
    const res = await post(stack, { 'repr-digest': 'sha-256=nope' }, await readFile(qcow2));
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/not a dictionary of byte sequences/);
    expect(existsSync(stack.diskPath)).toBe(false);
  });

  it('a resumed upload keeps its digest; a part with another digest is refused', async () => {
    const s = await startUploadStack(pki);
    stack = s;
    const whole = await readFile(qcow2);
    const size = whole.length;
    const half = Math.floor(size / 2);
    const part = async (start: number, end: number, d: string) => {
      const res = await request(`${s.proxy.url}/v1beta1/upload`, {
        method: 'PATCH',
        headers: {
          authorization: `Bearer ${await s.token()}`,
          'content-range': `bytes ${start}-${end - 1}/${size}`,
          'repr-digest': d,
        },
        body: whole.subarray(start, end),
        dispatcher: s.dispatcher,
      });
      return { status: res.statusCode, text: await res.body.text() };
    };
    expect((await part(0, half, digest)).status).toBe(204);
    // An early answer closes the connection while the body is still on its way: curl reads the
    // answer anyway (undici reports the reset instead).
    const other = `sha-256=:${createHash('sha256').update('x').digest('base64')}:`;
    const restFile = join(tmp.dir, 'rest.bin');
    await writeFile(restFile, whole.subarray(half));
    const refused = await curl([
      '-X',
      'PATCH',
      '-H',
      `Authorization: Bearer ${await s.token()}`,
      '-H',
      `Content-Range: bytes ${half}-${size - 1}/${size}`,
      '-H',
      `Repr-Digest: ${other}`,
      '--data-binary',
      `@${restFile}`,
      `${s.proxy.url}/v1beta1/upload`,
    ]);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatch(/differs from the one this upload started with/);
    const rest = await part(half, size, digest);
    expect(rest.status, rest.text).toBe(200);
    expect(await sameContent(s.diskPath, reference)).toBe(true);
  });
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
