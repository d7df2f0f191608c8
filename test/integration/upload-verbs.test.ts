// SPDX-License-Identifier: Apache-2.0
/**
 * The four upload verbs wired together in-process, as the pods run them: `cdi apiserver` mints a
 * token, `cdi uploadproxy` checks it and forwards over mTLS to `cdi uploadserver`, which imports,
 * writes CDI's termination message and exits 0. Then `cdi upload` drives the whole flow against a
 * small Kubernetes API stand-in that plays the controller's part (DataVolume phases).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.js';
import type { CommandContext } from '../../common/cli/context.js';
import { apiServerMain } from '../../uploadproxy/apiserver/main.js';
import { uploadProxyMain } from '../../uploadproxy/proxy/main.js';
import { uploadServerMain } from '../../uploadproxy/server/main.js';
import { uploadMain } from '../../uploadproxy/client/main.js';
import { makeQcow2Disk, makeTempDir, sameContent } from '../fixtures/index.js';
import { TEST_CLIENT_NAME, createUploadPki, type UploadPki } from '../helpers/upload-pki.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let pki: UploadPki;
let tmp: { dir: string; cleanup: () => Promise<void> };
let qcow2: string;
let reference: string;

beforeAll(async () => {
  pki = await createUploadPki();
  tmp = await makeTempDir('cdi-upload-verbs-');
  ({ qcow2, reference } = await makeQcow2Disk(tmp.dir, 'disk', 16 * MiB, [
    { offset: MiB, length: 3 * MiB, seed: 9 },
  ]));
});

afterAll(async () => {
  await tmp.cleanup();
  await pki.cleanup();
});

/** A verb run in-process: its context, its stderr text, and the URL it logged when listening. */
interface VerbRun {
  readonly ctx: CommandContext;
  readonly abort: AbortController;
  readonly stderr: () => string;
  readonly listening: Promise<string>;
}

function verbContext(env: Record<string, string> = {}): VerbRun {
  const abort = new AbortController();
  let resolveUrl!: (url: string) => void;
  const listening = new Promise<string>((resolve) => (resolveUrl = resolve));
  const logger = createLogger({
    component: 'test',
    level: 'info',
    write: (line) => {
      const parsed = JSON.parse(line) as { msg: string; url?: string };
      if (parsed.msg.endsWith('listening') && parsed.url !== undefined) resolveUrl(parsed.url);
    },
  });
  const err = new PassThrough();
  let text = '';
  err.on('data', (c: Buffer) => (text += c.toString()));
  return {
    abort,
    listening,
    stderr: () => text,
    ctx: {
      env,
      stdout: new PassThrough(),
      stderr: err as unknown as NodeJS.WriteStream,
      logger,
      signal: abort.signal,
      tmpDir: tmp.dir,
      proxy: {},
    },
  };
}

interface Stack {
  readonly serverRun: VerbRun;
  readonly server: Promise<number>;
  readonly apiUrl: string;
  readonly proxyUrl: string;
  readonly dataDir: string;
  readonly termLog: string;
  stop(): Promise<readonly number[]>;
}

async function startVerbs(name: string): Promise<Stack> {
  const dir = join(tmp.dir, name);
  const dataDir = join(dir, 'data');
  await mkdir(dataDir, { recursive: true });
  await mkdir(join(dir, 'scratch'));
  const termLog = join(dir, 'termination-log');
  await writeFile(join(dir, 'client.crt'), pki.clientCertPem);
  await writeFile(join(dir, 'client.key'), pki.clientKeyPem);
  const serverRun = verbContext({
    TLS_KEY_FILE: pki.serverKeyFile,
    TLS_CERT_FILE: pki.serverCertFile,
    CLIENT_CERT_FILE: pki.caFile,
    CLIENT_NAME: TEST_CLIENT_NAME,
    CDI_DATA_DIR: dataDir,
    CDI_SCRATCH_DIR: join(dir, 'scratch'),
    CDI_BLOCK_DEVICE: join(dir, 'no-block-device'),
    CDI_TERMINATION_LOG: termLog,
    CDI_UPLOAD_LISTEN: '127.0.0.1:0',
  });
  const server = uploadServerMain([], serverRun.ctx);
  const serverUrl = await serverRun.listening;
  const apiRun = verbContext();
  const publicKey = join(dir, 'token.pub');
  const api = apiServerMain(
    [
      '--listen',
      '127.0.0.1:0',
      '--tls-cert-file',
      pki.serverCertFile,
      '--tls-key-file',
      pki.serverKeyFile,
    ].concat(['--insecure-allow-all', '--public-key-out', publicKey]),
    apiRun.ctx,
  );
  const apiUrl = await apiRun.listening;
  const proxyRun = verbContext();
  const proxy = uploadProxyMain(
    [
      '--listen',
      '127.0.0.1:0',
      '--tls-cert-file',
      pki.serverCertFile,
      '--tls-key-file',
      pki.serverKeyFile,
    ]
      .concat(['--token-public-key-file', publicKey, '--static-upload-server', serverUrl])
      .concat([
        '--client-cert-file',
        join(dir, 'client.crt'),
        '--client-key-file',
        join(dir, 'client.key'),
      ])
      .concat(['--upload-server-ca-file', pki.caFile]),
    proxyRun.ctx,
  );
  const proxyUrl = await proxyRun.listening;
  return {
    serverRun,
    server,
    apiUrl,
    proxyUrl,
    dataDir,
    termLog,
    stop: async () => {
      apiRun.abort.abort();
      proxyRun.abort.abort();
      serverRun.abort.abort();
      return Promise.all([api, proxy, server]);
    },
  };
}

describe('upload verbs', () => {
  it('apiserver → token, uploadproxy → uploadserver: Upload Complete and exit 0', async () => {
    const stack = await startVerbs('flow');
    try {
      const res = await request(
        `${stack.apiUrl}/apis/upload.cdi.kubevirt.io/v1beta1/namespaces/default/uploadtokenrequests`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-remote-user': 'alice' },
          body: JSON.stringify({ kind: 'UploadTokenRequest', spec: { pvcName: 'disk' } }),
          dispatcher: new (await import('undici')).Agent({ connect: { ca: pki.caPem } }),
        },
      );
      expect(res.statusCode).toBe(201);
      const token = ((await res.body.json()) as { status: { token: string } }).status.token;
      const { stdout } = await run(
        'curl',
        [
          '-sS',
          '--cacert',
          pki.caFile,
          '-w',
          '%{http_code}',
          '-H',
          `Authorization: Bearer ${token}`,
        ].concat(['-F', `file=@${qcow2}`, `${stack.proxyUrl}/v1beta1/upload-form`]),
      );
      expect(stdout).toBe('200');
      expect(await stack.server).toBe(0);
      expect(JSON.parse(await readFile(stack.termLog, 'utf8'))).toEqual({
        scratchSpaceRequired: false,
        preallocationApplied: false,
        message: 'Upload Complete',
      });
      expect(await sameContent(join(stack.dataDir, 'disk.img'), reference)).toBe(true);
    } finally {
      expect(await stack.stop()).toEqual([0, 0, 0]);
    }
  });

  it('uploadserver refuses to start without TLS material, naming every variable', async () => {
    const v = verbContext({});
    expect(await uploadServerMain([], v.ctx)).toBe(1);
    expect(v.stderr()).toMatch(/TLS_KEY_FILE is required.*CLIENT_NAME is required/);
  });

  it('cdi upload: creates the DataVolume, waits for UploadReady, uploads, waits for Succeeded', async () => {
    const stack = await startVerbs('cli');
    const kube = await startKubeStandIn(stack);
    try {
      const kubeconfig = join(tmp.dir, 'kubeconfig');
      await writeFile(
        kubeconfig,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            { name: 'c', cluster: { server: kube.url, 'insecure-skip-tls-verify': true } },
          ],
          users: [{ name: 'u', user: { token: 't' } }],
          contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
          'current-context': 'x',
        }),
      );
      const cli = verbContext();
      const code = await uploadMain(
        [
          '--namespace',
          'default',
          '--dv',
          'disk',
          '--file',
          qcow2,
          '--size',
          '1Gi',
          '--kubeconfig',
          kubeconfig,
        ].concat(['--uploadproxy-url', stack.proxyUrl, '--ca-file', pki.caFile]),
        cli.ctx,
      );
      expect(cli.stderr()).toMatch(
        /DataVolume default\/disk created[\s\S]*Uploaded \d+ bytes[\s\S]*Succeeded/,
      );
      expect(code).toBe(0);
      expect(kube.created).toMatchObject([
        {
          kind: 'DataVolume',
          spec: {
            source: { upload: {} },
            storage: { resources: { requests: { storage: '1Gi' } } },
          },
        },
      ]);
      expect(await sameContent(join(stack.dataDir, 'disk.img'), reference)).toBe(true);
    } finally {
      await kube.close();
      await stack.stop();
    }
  });

  it("cdi upload fails with the proxy's reason when the token is refused", async () => {
    const stack = await startVerbs('refused');
    const kube = await startKubeStandIn(stack, { forgeToken: true });
    try {
      const cli = verbContext();
      const kubeconfig = join(tmp.dir, 'kubeconfig-refused');
      await writeFile(
        kubeconfig,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            { name: 'c', cluster: { server: kube.url, 'insecure-skip-tls-verify': true } },
          ],
          users: [{ name: 'u', user: { token: 't' } }],
          contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
          'current-context': 'x',
        }),
      );
      const refused = uploadMain(
        [
          '--dv',
          'disk',
          '--file',
          qcow2,
          '--size',
          '1Gi',
          '--kubeconfig',
          kubeconfig,
          '--uploadproxy-url',
          stack.proxyUrl,
          '--ca-file',
          pki.caFile,
        ],
        cli.ctx,
      );
      await expect(refused).rejects.toThrow(/^upload proxy answered 401: invalid upload token/);
    } finally {
      await kube.close();
      await stack.stop();
    }
  });
});

/**
 * A Kubernetes API stand-in for `cdi upload`: DataVolumes (404 until created, then UploadReady,
 * then Succeeded once the upload server exited), and uploadtokenrequests forwarded to the real
 * token API server.
 */
async function startKubeStandIn(
  stack: Stack,
  o: { readonly forgeToken?: boolean } = {},
): Promise<{ url: string; created: unknown[]; close(): Promise<void> }> {
  const created: unknown[] = [];
  let serverExited = false;
  void stack.server.then(() => (serverExited = true));
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const readJson = async (req: IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString());
  };
  const { Agent } = await import('undici');
  const dispatcher = new Agent({ connect: { ca: pki.caPem } });
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = req.url ?? '';
      if (url.startsWith('/apis/cdi.kubevirt.io/v1beta1/namespaces/default/datavolumes')) {
        if (req.method === 'POST') {
          created.push(await readJson(req));
          json(res, 201, created[0]);
        } else if (created.length === 0) {
          json(res, 404, {
            kind: 'Status',
            apiVersion: 'v1',
            status: 'Failure',
            reason: 'NotFound',
            code: 404,
          });
        } else {
          json(res, 200, {
            ...(created[0] as object),
            status: { phase: serverExited ? 'Succeeded' : 'UploadReady' },
          });
        }
        return;
      }
      if (
        url.startsWith(
          '/apis/upload.cdi.kubevirt.io/v1beta1/namespaces/default/uploadtokenrequests',
        ) &&
        req.method === 'POST'
      ) {
        const body = await readJson(req);
        const answer = await request(`${stack.apiUrl}${url}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-remote-user': 'alice' },
          body: JSON.stringify(body),
          dispatcher,
        });
        const minted = (await answer.body.json()) as { status: { token: string } };
        if (o.forgeToken === true) minted.status.token = `${minted.status.token.slice(0, -4)}AAAA`;
        json(res, 201, minted);
        return;
      }
      json(res, 404, {
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        reason: 'NotFound',
        code: 404,
      });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    created,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await dispatcher.close();
    },
  };
}
