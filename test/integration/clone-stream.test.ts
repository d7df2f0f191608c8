// SPDX-License-Identifier: Apache-2.0
/**
 * The network clone's data path with real parts: `cdi clone-source` (the source pod's entry,
 * spawned from dist/) reads a sparse raw disk by SEEK_DATA/SEEK_HOLE and POSTs its extent stream
 * over mTLS to a real upload server, which writes the data and leaves holes. qemu-img is the
 * oracle for the content.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { get } from 'node:https';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { createProgressMetric } from '../../importer/progress/metrics-server.js';
import { CLONE_PROGRESS_METRIC } from '../../common/contract.js';
import { startUploadServer, type UploadServer } from '../../uploadproxy/server/upload-server.js';
import { CLONE_UPLOAD_PATH } from '../../uploadproxy/server/clone-receive.js';
import {
  allocatedBytes,
  makeTempDir,
  qemuConvertToRaw,
  qemuImg,
  qemuIo,
} from '../fixtures/index.js';
import { runCdi } from '../helpers/cdi-cli.js';
import { TEST_CLIENT_NAME, createUploadPki, type UploadPki } from '../helpers/upload-pki.js';

const MiB = 1 << 20;
let pki: UploadPki;
let dir: string;
let cleanup: () => Promise<void>;
let sourceRaw: string;

beforeAll(async () => {
  pki = await createUploadPki();
  ({ dir, cleanup } = await makeTempDir('cdi-clone-stream-'));
  // The source claim's disk: a qcow2 with scattered data, converted to sparse raw by qemu-img.
  const qcow = path.join(dir, 'golden.qcow2');
  await qemuImg('create', '-f', 'qcow2', qcow, '256M');
  await qemuIo(
    qcow,
    'qcow2',
    'write -P 0x11 0 1M',
    'write -P 0x22 100M 6M',
    'write -P 0x33 255M 1M',
  );
  await mkdir(path.join(dir, 'source'));
  sourceRaw = await qemuConvertToRaw(qcow, path.join(dir, 'source', 'disk.img'));
});

afterAll(async () => {
  await cleanup();
  await pki.cleanup();
});

async function server(target: { kind: 'file' | 'block'; path: string }): Promise<UploadServer> {
  return startUploadServer({
    tls: {
      keyPem: pki.serverKeyPem,
      certPem: pki.serverCertPem,
      clientCaPem: pki.caPem,
      clientName: TEST_CLIENT_NAME,
    },
    host: '127.0.0.1',
    port: 0,
    target,
    filesystemOverhead: 0,
    preallocation: false,
    spillDir: dir,
    logger: silentLogger,
    progress: createProgressMetric('dv-uid'),
    cloneProgress: createProgressMetric('dv-uid', CLONE_PROGRESS_METRIC),
  });
}

function sourceEnv(s: UploadServer, extra: Record<string, string> = {}): Record<string, string> {
  return {
    // The certificate names localhost; the address dialled is the server's IP (as the Service's
    // cluster IP is in the sandbox).
    UPLOAD_URL: `https://localhost:${s.port}${CLONE_UPLOAD_PATH}`,
    UPLOAD_SERVER_ADDRESS: '127.0.0.1',
    CLIENT_KEY: pki.clientKeyPem,
    CLIENT_CERT: pki.clientCertPem,
    SERVER_CA_CERT: pki.caPem,
    VOLUME_MODE: 'filesystem',
    MOUNT_POINT: path.join(dir, 'source'),
    OWNER_UID: 'dv-uid',
    ...extra,
  };
}

function metrics(s: UploadServer): Promise<string> {
  return new Promise((resolve, reject) => {
    get(
      `https://127.0.0.1:${s.port}/metrics`,
      { ca: pki.caPem, servername: 'localhost' },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
      },
    ).on('error', reject);
  });
}

describe('network clone data path', () => {
  it('clones a filesystem claim sparsely: only data on the wire and on disk', async () => {
    const target = path.join(dir, 'target-fs', 'disk.img');
    const s = await server({ kind: 'file', path: target });
    try {
      const run = await runCdi(['clone-source'], sourceEnv(s));
      expect(run.code).toBe(0);
      expect(run.stderr).toMatch(/"msg":"clone source done".*"dataBytes":8388608/);
      const result = await s.done;
      expect(s.cloned).toBe(true);
      expect(result.size).toBe(256 * MiB);
      // 8 MiB of data were written; the rest is holes on the wire and on disk.
      expect(result.bytesTransferred).toBeLessThan(10 * MiB);
      expect(await allocatedBytes(target)).toBeLessThan(12 * MiB);
      await qemuImg('compare', '-f', 'raw', '-F', 'raw', sourceRaw, target);
      expect(await metrics(s)).toMatch(
        /kubevirt_cdi_clone_progress_total\{ownerUID="dv-uid"\} 100\b/,
      );
    } finally {
      await s.close();
    }
  });

  it('clones into a block target holding old data: the holes are zeroed', async () => {
    const device = path.join(dir, 'block.dev');
    // A "device" (a plain file, as in the sandbox) full of stale bytes.
    await writeFile(device, Buffer.alloc(256 * MiB, 0xee));
    const s = await server({ kind: 'block', path: device });
    try {
      const run = await runCdi(
        ['clone-source'],
        sourceEnv(s, { VOLUME_MODE: 'block', MOUNT_POINT: sourceRaw }),
      );
      expect(run.code).toBe(0);
      await s.done;
      await qemuImg('compare', '-f', 'raw', '-F', 'raw', sourceRaw, device);
    } finally {
      await s.close();
    }
  });

  it('refuses a client certificate from another CA (401) and stays ready for the real source', async () => {
    const target = path.join(dir, 'target-refused', 'disk.img');
    const s = await server({ kind: 'file', path: target });
    try {
      const stranger = await runCdi(
        ['clone-source'],
        sourceEnv(s, { CLIENT_KEY: pki.strangerKeyPem, CLIENT_CERT: pki.strangerCertPem }),
      );
      expect(stranger.code).toBe(1);
      expect(stranger.stderr).toMatch(/the upload server answered 401/);
      const run = await runCdi(['clone-source'], sourceEnv(s));
      expect(run.code).toBe(0);
      await s.done;
      await qemuImg('compare', '-f', 'raw', '-F', 'raw', sourceRaw, target);
    } finally {
      await s.close();
    }
  });

  it('fails a source whose disk does not fit the target device', async () => {
    const s = await startUploadServer({
      host: '127.0.0.1',
      port: 0,
      target: { kind: 'block', path: path.join(dir, 'small.dev') },
      filesystemOverhead: 0,
      preallocation: false,
      spillDir: dir,
      logger: silentLogger,
    });
    await writeFile(path.join(dir, 'small.dev'), Buffer.alloc(MiB));
    try {
      const run = await runCdi(
        ['clone-source'],
        sourceEnv(s, { UPLOAD_URL: `http://127.0.0.1:${s.port}${CLONE_UPLOAD_PATH}` }),
      );
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/answered 400: .*exceeds/i);
      expect(s.cloned).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('refuses a missing source disk with one clear line', async () => {
    const run = await runCdi(
      ['clone-source'],
      sourceEnv({ port: 1 } as UploadServer, { MOUNT_POINT: path.join(dir, 'nowhere') }),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/cannot open the clone source .*nowhere\/disk\.img/);
  });
});
