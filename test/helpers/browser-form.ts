// SPDX-License-Identifier: Apache-2.0
/**
 * A browser form upload as the OpenShift console does it: a page on its own origin posts
 * `multipart/form-data` (field `file`) with a bearer token to the upload proxy, through CORS.
 * Debian's `chromium` driven by puppeteer-core (`CHROMIUM` overrides the path).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import puppeteer, { type Browser } from 'puppeteer-core';

const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';

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

/** The page server and the browser; `close()` ends both. */
export interface FormUploader {
  /** Uploads `file` to `proxyUrl` with `token` from the page; resolves with the HTTP status text. */
  upload(options: { proxyUrl: string; token: string; file: string }): Promise<string>;
  close(): Promise<void>;
}

/** Starts the page server on 127.0.0.1 and a headless browser. */
export async function startFormUploader(): Promise<FormUploader> {
  const page: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(PAGE);
  });
  await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Root in a container has no user namespaces for the sandbox; the test CA is not in the
      // browser's store, so its certificate errors are accepted for this throw-away profile only.
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
      acceptInsecureCerts: true,
    });
  } catch (err) {
    await new Promise((resolve) => page.close(resolve));
    throw err;
  }
  const origin = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
  return {
    async upload({ proxyUrl, token, file }) {
      const tab = await browser.newPage();
      try {
        const query = new URLSearchParams({ proxy: proxyUrl, token });
        await tab.goto(`${origin}/?${query.toString()}`);
        const input = await tab.$('#file');
        if (input === null) throw new Error('the page has no file input');
        await input.uploadFile(file);
        await tab.click('#go');
        // Strings run in the page (no DOM types on the Node side).
        await tab.waitForFunction('document.body.dataset.status !== undefined', {
          timeout: 60_000,
        });
        return String(await tab.evaluate('document.body.dataset.status'));
      } finally {
        await tab.close();
      }
    },
    async close() {
      await browser.close();
      await new Promise((resolve) => page.close(resolve));
    },
  };
}
