// SPDX-License-Identifier: Apache-2.0
/**
 * Resumable uploads through the real proxy and upload server: a connection dropped at about 90%
 * continues from the durable offset (`HEAD`, then `PUT` + `Content-Range`) and the disk ends
 * byte-identical; `cdi upload`'s client does the same by itself through a relay that cuts the
 * network; a plain retry from byte 0 (virtctl's way) also works.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { readFile, stat } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { uploadFile } from '../../uploadproxy/client/client.js';
import { makeQcow2Disk, makeTempDir, sameContent } from '../fixtures/index.js';
import { startCuttingProxy } from '../helpers/cutting-proxy.js';
import { createUploadPki, type UploadPki } from '../helpers/upload-pki.js';
import { startUploadStack, type UploadStack } from '../helpers/upload-stack.js';

const MiB = 1024 * 1024;
let pki: UploadPki;
let tmp: { dir: string; cleanup: () => Promise<void> };
let qcow2: string;
let reference: string;
let stack: UploadStack | undefined;

beforeAll(async () => {
  pki = await createUploadPki();
  tmp = await makeTempDir('cdi-upload-resume-');
  ({ qcow2, reference } = await makeQcow2Disk(tmp.dir, 'disk', 32 * MiB, [
    { offset: 0, length: 6 * MiB, seed: 7 },
    { offset: 20 * MiB, length: 6 * MiB, seed: 8 },
  ]));
});

afterAll(async () => {
  await tmp.cleanup();
  await pki.cleanup();
});

afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/**
 * Sends the whole file as one upload through a relay that cuts the network after about `cut`
 * bytes; resolves with the durable offset the server reports for the drop.
 */
async function sendAndDrop(s: UploadStack, token: string, cut: number): Promise<number> {
  const relay = await startCuttingProxy({ targetPort: s.proxy.port, cutAfter: cut });
  const dispatcher = new Agent({ connect: { ca: pki.caPem, servername: 'localhost' } });
  try {
    const dropped = s.nextDrop();
    const outcome = await request(`https://127.0.0.1:${relay.port}/v1beta1/upload`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-length': String((await stat(qcow2)).size),
      },
      body: createReadStream(qcow2),
      dispatcher,
    }).catch((err: unknown) => err);
    expect(outcome).toBeInstanceOf(Error);
    expect(relay.cuts()).toBe(1);
    return await dropped;
  } finally {
    await dispatcher.close();
    await relay.close();
  }
}

describe.each([{ journal: 'memory' as const }, { journal: 'disk' as const }])(
  'resumable uploads ($journal journal)',
  ({ journal }) => {
    it('a connection dropped at ~90% resumes from HEAD with Content-Range and ends byte-identical', async () => {
      stack = await startUploadStack(pki, { journal });
      const token = await stack.token();
      const size = (await stat(qcow2)).size;
      const durable = await sendAndDrop(stack, token, Math.floor(size * 0.9));
      expect(durable).toBeGreaterThan(0);
      expect(durable).toBeLessThanOrEqual(Math.floor(size * 0.9));
      const auth = { authorization: `Bearer ${token}` };
      const head = await request(`${stack.proxy.url}/v1beta1/upload`, {
        method: 'HEAD',
        headers: auth,
        dispatcher: stack.dispatcher,
      });
      await head.body.dump();
      expect(head.statusCode).toBe(200);
      expect(head.headers['upload-offset']).toBe(String(durable));
      expect(head.headers['upload-length']).toBe(String(size));

      const wrong = await request(`${stack.proxy.url}/v1beta1/upload`, {
        method: 'PATCH',
        headers: { ...auth, 'content-range': `bytes 1-${size - 1}/${size}` },
        body: createReadStream(qcow2, { start: 1 }),
        dispatcher: stack.dispatcher,
      });
      await wrong.body.dump();
      expect(wrong.statusCode).toBe(416);
      expect(wrong.headers['upload-offset']).toBe(String(durable));

      const rest = await request(`${stack.proxy.url}/v1beta1/upload`, {
        method: 'PUT',
        headers: {
          ...auth,
          'content-range': `bytes ${durable}-${size - 1}/${size}`,
          'content-length': String(size - durable),
        },
        body: createReadStream(qcow2, { start: durable }),
        dispatcher: stack.dispatcher,
      });
      expect(await rest.body.text()).toBe('');
      expect(rest.statusCode).toBe(200);
      await stack.server.done;
      expect(await sameContent(stack.diskPath, reference)).toBe(true);
    });

    it('curl resumes with -T - and Content-Range, as docs/upload.md shows', async () => {
      stack = await startUploadStack(pki, { journal });
      const token = await stack.token();
      const size = (await stat(qcow2)).size;
      const durable = await sendAndDrop(stack, token, Math.floor(size * 0.9));
      const child = spawn(
        'curl',
        [
          '-sS',
          '--cacert',
          pki.caFile,
          '-w',
          '%{http_code}',
          '-H',
          `Authorization: Bearer ${token}`,
        ].concat([
          '-H',
          `Content-Range: bytes ${durable}-${size - 1}/${size}`,
          '-T',
          '-',
          `${stack.proxy.url}/v1beta1/upload`,
        ]),
      );
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      const exited = once(child, 'close');
      await pipeline(createReadStream(qcow2, { start: durable }), child.stdin);
      await exited;
      expect(out).toBe('200');
      expect(await sameContent(stack.diskPath, reference)).toBe(true);
    });

    it('chunks: PATCH pieces with Content-Range answer 204 until the last one', async () => {
      stack = await startUploadStack(pki, { journal });
      const token = await stack.token();
      const bytes = await readFile(qcow2);
      const pieces = [
        0,
        Math.floor(bytes.length / 3),
        Math.floor((2 * bytes.length) / 3),
        bytes.length,
      ];
      const statuses: number[] = [];
      for (let i = 0; i + 1 < pieces.length; i++) {
        const [start, end] = [pieces[i]!, pieces[i + 1]!];
        const res = await request(`${stack.proxy.url}/v1beta1/upload`, {
          method: 'PATCH',
          headers: {
            authorization: `Bearer ${token}`,
            'content-range': `bytes ${start}-${end - 1}/${bytes.length}`,
          },
          body: bytes.subarray(start, end),
          dispatcher: stack.dispatcher,
        });
        await res.body.dump();
        statuses.push(res.statusCode);
        if (res.statusCode === 204) expect(res.headers['upload-offset']).toBe(String(end));
      }
      expect(statuses).toEqual([204, 204, 200]);
      expect(await sameContent(stack.diskPath, reference)).toBe(true);
    });

    it('a dropped upload retried from byte 0 (virtctl style) succeeds', async () => {
      stack = await startUploadStack(pki, { journal });
      const token = await stack.token();
      await sendAndDrop(stack, token, 5 * MiB);
      const res = await request(`${stack.proxy.url}/v1beta1/upload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: createReadStream(qcow2),
        dispatcher: stack.dispatcher,
      });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
      expect(await sameContent(stack.diskPath, reference)).toBe(true);
    });

    it('the cdi upload client resumes by itself after the network cuts at ~90%', async () => {
      stack = await startUploadStack(pki, { journal });
      const size = (await stat(qcow2)).size;
      const relay = await startCuttingProxy({
        targetPort: stack.proxy.port,
        cutAfter: Math.floor(size * 0.9),
      });
      const dispatcher = new Agent({ connect: { ca: pki.caPem } });
      try {
        const progress: number[] = [];
        const result = await uploadFile({
          proxyUrl: `https://127.0.0.1:${relay.port}`,
          token: await stack.token(),
          file: qcow2,
          target: { namespace: 'default', pvc: 'disk' },
          retryDelayMs: 10,
          onProgress: (p) => progress.push(p.sent),
          signal: AbortSignal.timeout(60_000),
          logger: silentLogger,
          dispatcher,
        });
        expect(relay.cuts()).toBe(1);
        // HEAD answers 503 until the server noticed the drop, so one resume is enough.
        expect(result.resumes).toBe(1);
        expect(result.bytes).toBe(size);
        // A resume, not a restart: the last attempt continued from what the server kept.
        expect(result.resumedFrom.at(-1)).toBe(stack.drops[0]);
        expect(stack.drops[0]).toBeGreaterThan(size * 0.5);
        expect(progress.at(-1)).toBe(size);
        expect(await sameContent(stack.diskPath, reference)).toBe(true);
      } finally {
        await dispatcher.close();
        await relay.close();
      }
    });
  },
);
