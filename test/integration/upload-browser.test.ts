// SPDX-License-Identifier: Apache-2.0
/**
 * A form upload from headless Chromium (Debian's `chromium`, driven by puppeteer-core): a page on
 * another origin posts `multipart/form-data` with the field `file` and a bearer token to the upload
 * proxy, as the OpenShift console does. CORS preflight and all; the disk ends byte-identical to
 * `qemu-img convert -O raw`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeRawImage,
  makeTempDir,
  qemuConvertToRaw,
  qemuImg,
  sameContent,
} from '../fixtures/index.js';
import { createUploadPki, type UploadPki } from '../helpers/upload-pki.js';
import { startUploadStack, type UploadStack } from '../helpers/upload-stack.js';

/** Debian's browser; `CHROMIUM` overrides. */
const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
const MiB = 1024 * 1024;
let pki: UploadPki;
let tmp: { dir: string; cleanup: () => Promise<void> };
let qcow2: string;
let reference: string;
let stack: UploadStack;
let page: Server;
let browser: Browser;

const PAGE = `<!doctype html>
<html><body>
<form id="f"><input type="file" name="file" id="file"><button type="submit" id="go">Upload</button></form>
<script>
  document.getElementById('f').addEventListener('submit', async (e) => {
    e.preventDefault();
    const q = new URLSearchParams(location.search);
    try {
      const res = await fetch(q.get('proxy') + '/v1beta1/upload-form', {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + q.get('token') },
        body: new FormData(e.target),
      });
      document.body.dataset.status = String(res.status);
      document.body.dataset.text = await res.text();
    } catch (err) {
      document.body.dataset.status = 'error: ' + err;
    }
  });
</script>
</body></html>`;

beforeAll(async () => {
  pki = await createUploadPki();
  tmp = await makeTempDir('cdi-upload-browser-');
  const raw = await makeRawImage(join(tmp.dir, 'disk.raw'), 20 * MiB, [
    { offset: 0, length: 2 * MiB, seed: 11 },
    { offset: 12 * MiB, length: MiB, seed: 12 },
  ]);
  qcow2 = join(tmp.dir, 'disk.qcow2');
  await qemuImg('convert', '-O', 'qcow2', raw, qcow2);
  reference = await qemuConvertToRaw(qcow2, join(tmp.dir, 'reference.raw'));
  stack = await startUploadStack(pki);
  page = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(PAGE);
  });
  await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespaces for the sandbox; the test CA is not in the
    // browser's store, so its certificate errors are accepted for this throw-away profile only.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    acceptInsecureCerts: true,
  });
});

afterAll(async () => {
  await browser.close();
  await new Promise<void>((resolve) => page.close(() => resolve()));
  await stack.close();
  await tmp.cleanup();
  await pki.cleanup();
});

describe('browser form upload', () => {
  it('a page on another origin uploads through CORS and the disk is byte-identical', async () => {
    const tab = await browser.newPage();
    const token = await stack.token();
    const origin = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
    const query = new URLSearchParams({ proxy: stack.proxy.url, token });
    await tab.goto(`${origin}/?${query.toString()}`);
    const input = await tab.$('#file');
    if (input === null) throw new Error('the page has no file input');
    await input.uploadFile(qcow2);
    await tab.click('#go');
    // Strings run in the page (no DOM types on the Node side).
    await tab.waitForFunction('document.body.dataset.status !== undefined', { timeout: 60_000 });
    const status: unknown = await tab.evaluate('document.body.dataset.status');
    expect(status).toBe('200');
    await stack.server.done;
    expect(await sameContent(stack.diskPath, reference)).toBe(true);
  });
});
