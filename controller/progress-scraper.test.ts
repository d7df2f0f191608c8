// SPDX-License-Identifier: Apache-2.0
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProgress, parseUploadRefusal, scrapeProgress } from './progress-scraper.js';

const UID = '3f6e-uid';

describe('parseProgress', () => {
  it.each([
    {
      what: 'fraction',
      text: `kubevirt_cdi_import_progress_total{ownerUID="${UID}"} 45.678`,
      want: '45.68%',
    },
    {
      what: 'integer',
      text: `kubevirt_cdi_import_progress_total{ownerUID="${UID}"} 7`,
      want: '7.00%',
    },
    {
      what: 'done',
      text: `kubevirt_cdi_import_progress_total{ownerUID="${UID}"} 100`,
      want: '100.00%',
    },
    {
      what: 'among other metrics and owners',
      text: `# HELP x\n# TYPE kubevirt_cdi_import_progress_total counter\nkubevirt_cdi_import_progress_total{ownerUID="other"} 99\nkubevirt_cdi_import_progress_total{ownerUID="${UID}"} 12.5\nprocess_cpu 3`,
      want: '12.50%',
    },
    {
      what: 'other labels too',
      text: `kubevirt_cdi_import_progress_total{a="b",ownerUID="${UID}"} 1.5`,
      want: '1.50%',
    },
    {
      what: 'clone metric',
      text: `kubevirt_cdi_clone_progress_total{ownerUID="${UID}"} 3`,
      want: '3.00%',
    },
    {
      what: 'missing owner',
      text: 'kubevirt_cdi_import_progress_total{ownerUID="other"} 5',
      want: undefined,
    },
    { what: 'garbage', text: 'not metrics', want: undefined },
  ])('$what', ({ text, want }) => {
    expect(parseProgress(text, UID)).toBe(want);
  });
});

describe('parseUploadRefusal', () => {
  it.each([
    {
      what: 'no refusal',
      text: 'kubevirt_cdi_import_progress_total{ownerUID="u"} 5\n',
      want: undefined,
    },
    {
      what: 'a refusal',
      text: '# TYPE kubevirt_cdi_upload_refused_info gauge\nkubevirt_cdi_upload_refused_info{message="Saving stream failed: too big"} 1\n',
      want: 'Saving stream failed: too big',
    },
    {
      what: 'escaped quotes, backslashes and newlines',
      text: 'kubevirt_cdi_upload_refused_info{message="a \\"b\\" c\\\\d\\ne"} 1\n',
      want: 'a "b" c\\d\ne',
    },
  ])('$what', ({ text, want }) => {
    expect(parseUploadRefusal(text)).toBe(want);
  });
});

describe('scrapeProgress against a real HTTPS endpoint', () => {
  let dir: string;
  let server: Server;
  let port: number;
  let body = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cdi-scrape-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=importer',
        '-days',
        '1',
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
      ],
      { stdio: 'ignore' },
    );
    server = createServer(
      { key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) },
      (req, res) => {
        if (req.url !== '/metrics') {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads the self-signed endpoint with verification off', async () => {
    body = `kubevirt_cdi_import_progress_total{ownerUID="${UID}"} 45.67\n`;
    expect(await scrapeProgress({ podIp: '127.0.0.1', port, ownerUid: UID })).toBe('45.67%');
  });

  it('gives undefined when nothing listens (pod still starting)', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(
      await scrapeProgress({ podIp: '127.0.0.1', port: deadPort, ownerUid: UID }),
    ).toBeUndefined();
  });
});
