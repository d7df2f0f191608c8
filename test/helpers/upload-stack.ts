// SPDX-License-Identifier: Apache-2.0
/**
 * The upload data path on loopback: an mTLS upload server writing `disk.img` in a temp dir, and
 * the HTTPS upload proxy in front of it with a static resolver for PVC `default/disk`.
 */
import { EventEmitter, once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Agent } from 'undici';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { createLogger, silentLogger, type Logger } from '../../common/logger.js';
import { startUploadProxy, type UploadProxy } from '../../uploadproxy/proxy/proxy.js';
import {
  signUploadToken,
  type SignOptions,
  type UploadTarget,
} from '../../uploadproxy/protocol/token.js';
import { startUploadServer, type UploadServer } from '../../uploadproxy/server/upload-server.js';
import { createProgressMetric } from '../../importer/progress/metrics-server.js';
import { makeTempDir } from '../fixtures/index.js';
import { TEST_CLIENT_NAME, type UploadPki } from './upload-pki.js';

/** The PVC the stack serves. */
export const STACK_TARGET: UploadTarget = { namespace: 'default', pvc: 'disk' };

/** A running stack. */
export interface UploadStack {
  readonly dir: string;
  readonly diskPath: string;
  readonly server: UploadServer;
  readonly proxy: UploadProxy;
  /** An undici dispatcher trusting the test CA. */
  readonly dispatcher: Agent;
  /** Whether the resolver reports the upload server ready. */
  ready: boolean;
  /** The durable offset at each dropped connection so far. */
  readonly drops: number[];
  /** Resolves with the durable offset at the next dropped connection. */
  nextDrop(): Promise<number>;
  token(target?: UploadTarget, options?: SignOptions): Promise<string>;
  close(): Promise<void>;
}

/** Options of {@link startUploadStack}. */
export interface UploadStackOptions {
  readonly requestedSize?: number;
  readonly journal?: 'memory' | 'disk';
  readonly readyTimeoutMs?: number;
  /** The upload server's idle timeout (default 60 s). */
  readonly idleTimeoutMs?: number;
  /** Logger of server and proxy (default silent, or text with CDI_TEST_DEBUG=1). */
  readonly logger?: Logger;
  /** Serve the progress metric (and the last refusal) on /metrics for this owner. */
  readonly ownerUid?: string;
}

/** Starts server and proxy; `close()` stops both and removes the temp dir. */
export async function startUploadStack(
  pki: UploadPki,
  options: UploadStackOptions = {},
): Promise<UploadStack> {
  const tmp = await makeTempDir('cdi-upload-');
  // CDI_TEST_DEBUG=1 shows the server's and proxy's logs.
  const logger =
    options.logger ??
    (process.env['CDI_TEST_DEBUG'] === '1'
      ? createLogger({ component: 'upload', level: 'debug', format: 'text' })
      : silentLogger);
  const dataDir = path.join(tmp.dir, 'data');
  const scratch = path.join(tmp.dir, 'scratch');
  await mkdir(dataDir);
  await mkdir(scratch);
  const drops: number[] = [];
  const events = new EventEmitter();
  const diskPath = path.join(dataDir, 'disk.img');
  const server = await startUploadServer({
    tls: {
      keyPem: pki.serverKeyPem,
      certPem: pki.serverCertPem,
      clientCaPem: pki.caPem,
      clientName: TEST_CLIENT_NAME,
    },
    target: { kind: 'file', path: diskPath },
    archiveDir: dataDir,
    ...(options.requestedSize === undefined ? {} : { requestedSize: options.requestedSize }),
    filesystemOverhead: 0,
    preallocation: false,
    spillDir: scratch,
    ...(options.journal === undefined ? {} : { journal: options.journal }),
    ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
    ...(options.ownerUid === undefined ? {} : { progress: createProgressMetric(options.ownerUid) }),
    logger,
    onDrop: (n) => {
      drops.push(n);
      events.emit('drop', n);
    },
  });
  const state = { ready: true };
  const proxy = await startUploadProxy({
    tls: { keyPem: pki.serverKeyPem, certPem: pki.serverCertPem },
    tokenKey: pki.tokenKeys.publicKey,
    upstreamTls: {
      clientCertPem: pki.clientCertPem,
      clientKeyPem: pki.clientKeyPem,
      serverCaPem: pki.caPem,
    },
    resolver: (t) => {
      if (t.namespace !== STACK_TARGET.namespace || t.pvc !== STACK_TARGET.pvc)
        return Promise.reject(
          new CdiError(
            ErrorCodes.UploadNotReady,
            `rejecting Upload Request for PVC ${t.pvc} that doesn't exist`,
            { httpStatus: 503 },
          ),
        );
      return Promise.resolve({ url: server.url, ready: state.ready });
    },
    readyTimeoutMs: options.readyTimeoutMs ?? 300,
    pollIntervalMs: 50,
    logger,
  });
  const dispatcher = new Agent({ connect: { ca: pki.caPem } });
  const stack: UploadStack = {
    dir: tmp.dir,
    diskPath,
    server,
    proxy,
    dispatcher,
    get ready() {
      return state.ready;
    },
    set ready(v: boolean) {
      state.ready = v;
    },
    drops,
    nextDrop: async () => ((await once(events, 'drop')) as [number])[0],
    token: (target = STACK_TARGET, o = {}) => signUploadToken(pki.tokenKeys.privateKey, target, o),
    close: async () => {
      await dispatcher.close();
      await proxy.close();
      await server.close();
      await tmp.cleanup();
    },
  };
  return stack;
}
