// SPDX-License-Identifier: Apache-2.0
/**
 * A form upload from headless Chromium (Debian's `chromium`, driven by puppeteer-core): a page on
 * another origin posts `multipart/form-data` with the field `file` and a bearer token to the upload
 * proxy, as the OpenShift console does. CORS preflight and all; the disk ends byte-identical to
 * `qemu-img convert -O raw`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeQcow2Disk, makeTempDir, sameContent } from '../fixtures/index.js';
import { startFormUploader, type FormUploader } from '../helpers/browser-form.js';
import { createUploadPki, type UploadPki } from '../helpers/upload-pki.js';
import { startUploadStack, type UploadStack } from '../helpers/upload-stack.js';

const MiB = 1024 * 1024;
let pki: UploadPki;
let tmp: { dir: string; cleanup: () => Promise<void> };
let qcow2: string;
let reference: string;
let stack: UploadStack;
let browser: FormUploader;

beforeAll(async () => {
  pki = await createUploadPki();
  tmp = await makeTempDir('cdi-upload-browser-');
  ({ qcow2, reference } = await makeQcow2Disk(tmp.dir, 'disk', 20 * MiB, [
    { offset: 0, length: 2 * MiB, seed: 11 },
    { offset: 12 * MiB, length: MiB, seed: 12 },
  ]));
  stack = await startUploadStack(pki);
  browser = await startFormUploader();
});

afterAll(async () => {
  await browser.close();
  await stack.close();
  await tmp.cleanup();
  await pki.cleanup();
});

describe('browser form upload', () => {
  it('a page on another origin uploads through CORS and the disk is byte-identical', async () => {
    const status = await browser.upload({
      proxyUrl: stack.proxy.url,
      token: await stack.token(),
      file: qcow2,
    });
    expect(status).toBe('200');
    await stack.server.done;
    expect(await sameContent(stack.diskPath, reference)).toBe(true);
  });
});
