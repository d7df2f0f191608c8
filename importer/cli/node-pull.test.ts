// SPDX-License-Identifier: Apache-2.0
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../common/logger.js';
import { serverLabels, servedEndpoint, touchDoneFile, waitForServer } from './node-pull.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cdi-node-pull-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('servedEndpoint', () => {
  it.each([
    ['http://localhost:8100/disk.img', 'fedora.qcow2', 'http://localhost:8100/fedora.qcow2'],
    ['http://localhost:8100/disk.img', '', 'http://localhost:8100/disk.img'],
    ['http://localhost:8100/disk.img', 'a b.img', 'http://localhost:8100/a%20b.img'],
    ['http://localhost:8100/', 'x.raw', 'http://localhost:8100/x.raw'],
  ])('%s with %j is %s', (endpoint, name, want) => {
    expect(servedEndpoint(endpoint, name)).toBe(want);
  });
});

describe('waitForServer', () => {
  it('reads the served name once the ready file exists', async () => {
    const ready = join(dir, 'ready');
    setTimeout(() => void writeFile(ready, 'disk.qcow2'), 300);
    await expect(
      waitForServer(ready, 'http://localhost:8100/disk.img', new AbortController().signal),
    ).resolves.toBe('http://localhost:8100/disk.qcow2');
  });

  it('gives up with CDI’s message when the server never gets ready', async () => {
    const ready = join(dir, 'never');
    await expect(
      waitForServer(ready, 'http://localhost:8100/disk.img', new AbortController().signal, 0),
    ).rejects.toThrow(`Timeout waiting for file ${ready}`);
  });
});

describe('touchDoneFile', () => {
  it('creates the file, and again without error', async () => {
    const done = join(dir, 'done');
    await touchDoneFile(done);
    await touchDoneFile(done);
    expect(await readdir(dir)).toEqual(['done']);
  });
});

describe('serverLabels', () => {
  let server: Server;
  let status = 200;
  beforeEach(async () => {
    server = createServer((req, res) => {
      if (req.url !== '/info') return void res.writeHead(404).end();
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          env: ['PATH=/bin', 'INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE=u1.small'],
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterEach(async () => {
    status = 200;
    await new Promise((resolve) => server.close(resolve));
  });
  const endpoint = (): string =>
    `http://127.0.0.1:${(server.address() as AddressInfo).port}/disk.qcow2`;

  it("turns the server's KUBEVIRT_IO_ environment into labels", async () => {
    expect(await serverLabels(endpoint(), silentLogger)).toEqual({
      'instancetype.kubevirt.io/default-instancetype': 'u1.small',
    });
  });

  it('gives none when the server does not answer 200', async () => {
    status = 500;
    expect(await serverLabels(endpoint(), silentLogger)).toEqual({});
  });
});
