// SPDX-License-Identifier: Apache-2.0
/**
 * The CDI processes a real cluster would run as Deployments, run here as child processes of
 * the sandbox with the flags deploy/ gives them:
 * - `cdi controller --kubeconfig F --namespace cdi`;
 * - with the upload proxy, once the controller has bootstrapped its PKI in `cdi`: the token API
 *   `cdi apiserver --kubeconfig F --listen 127.0.0.1:P1 ...`, registered as the APIService
 *   `v1beta1.upload.cdi.kubevirt.io`, and `cdi uploadproxy --kubeconfig F --listen 127.0.0.1:P2
 *   ... --upload-server-address cluster-ip`, serving a loopback certificate from the sandbox's
 *   CA (as a Route would) and named in CDIConfig `spec.uploadProxyURLOverride`.
 * Each starts only when its build output exists in dist/, so the sandbox works before they are
 * written.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { stopProcess, trackGroup } from './container-process.js';
import type { ObjectApi } from './object-api.js';
import { issueLeaf } from './pki.js';
import {
  CDI_NAMESPACE,
  ensureNamespace,
  registerTokenApi,
  setUploadProxyUrl,
  waitForUploadPki,
  writeUploadPki,
  type MountedFiles,
} from './upload-wiring.js';
import { freePort } from '../helpers/free-port.js';

/** Options of {@link startComponents}. */
export interface ComponentOptions {
  readonly root: string;
  readonly api: ObjectApi;
  readonly kubeconfigPath: string;
  /** A kubeconfig of a ServiceAccount: each component runs as the one deploy/ gives it. */
  readonly serviceAccountKubeconfig: (namespace: string, name: string) => Promise<string>;
  readonly dataDir: string;
  readonly controller: boolean;
  readonly uploadProxy: boolean;
  /** The sandbox CA, which signs the proxy's loopback serving certificate. */
  readonly ca: { readonly caPem: string; readonly caKeyPem: string };
  /** How long to wait for the controller's PKI objects (default 30 s). */
  readonly pkiTimeoutMs?: number;
  readonly log: Logger;
}

/** The running components. */
export interface Components {
  readonly uploadProxyUrl: string | undefined;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;

/** The ServiceAccounts of deploy/'s Deployments (`serviceAccountName`). */
export const ServiceAccounts = {
  Controller: 'cdi-sa',
  TokenApi: 'cdi-apiserver',
  UploadProxy: 'cdi-uploadproxy',
} as const;

async function waitPort(name: string, port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new CdiError(ErrorCodes.Internal, `${name} exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new CdiError(
    ErrorCodes.Internal,
    `${name} did not listen on 127.0.0.1:${port} within ${READY_TIMEOUT_MS} ms`,
  );
}

function spawnCdi(root: string, args: readonly string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(process.execPath, [join(root, 'dist', 'cmd', 'cdi.js'), ...args], {
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    trackGroup(child);
    return child;
  } finally {
    closeSync(fd);
  }
}

function built(root: string, ...modules: string[]): boolean {
  return [join('cmd', 'cdi.js'), ...modules].every((m) => existsSync(join(root, 'dist', m)));
}

/** One `cdi` process that listens on 127.0.0.1:`port`; `name` is its verb and log file name. */
interface ListeningProcess {
  readonly name: string;
  readonly args: readonly string[];
  readonly port: number;
}

/** Starts one process and waits for its port. */
async function startListening(
  opts: ComponentOptions,
  children: ChildProcess[],
  { name, args, port }: ListeningProcess,
): Promise<void> {
  const log = join(opts.dataDir, `${name}.log`);
  const child = spawnCdi(opts.root, args, log);
  children.push(child);
  try {
    await waitPort(`cdi ${name}`, port, child);
  } catch (err) {
    throw new CdiError(
      ErrorCodes.Internal,
      `${err instanceof Error ? err.message : String(err)} (log: ${log})`,
      { cause: err },
    );
  }
  opts.log.info(`${name} started`, { url: `https://127.0.0.1:${port}`, log });
}

/** The token API and the upload proxy, wired as described in the module comment. */
async function startUploadPath(opts: ComponentOptions, children: ChildProcess[]): Promise<string> {
  await waitForUploadPki(opts.api, opts.pkiTimeoutMs ?? READY_TIMEOUT_MS);
  const apiKubeconfig = await opts.serviceAccountKubeconfig(
    CDI_NAMESPACE,
    ServiceAccounts.TokenApi,
  );
  const proxyKubeconfig = await opts.serviceAccountKubeconfig(
    CDI_NAMESPACE,
    ServiceAccounts.UploadProxy,
  );
  const files: MountedFiles = await writeUploadPki(opts.api, join(opts.dataDir, 'mounts'));
  const [apiPort, proxyPort] = [await freePort(), await freePort()];
  const apiCert = files.apiServerCert;
  await startListening(opts, children, {
    name: 'apiserver',
    args: [
      ...['apiserver', '--kubeconfig', apiKubeconfig, '--listen', `127.0.0.1:${apiPort}`],
      ...['--tls-cert-file', apiCert['tls.crt'] ?? '', '--tls-key-file', apiCert['tls.key'] ?? ''],
      // No --requestheader-client-ca-file: as deployed, it reads the front proxy's CA from
      // kube-system/extension-apiserver-authentication through the API.
      ...['--token-key-file', files.signingKey['id_rsa'] ?? ''],
    ],
    port: apiPort,
  });
  const bundle = await readFile(files.apiServerBundle['ca-bundle.crt'] ?? '', 'utf8');
  registerTokenApi(opts.api, apiPort, bundle);
  const serving = await issueLeaf(join(opts.dataDir, 'uploadproxy-route-tls'), opts.ca, [
    '127.0.0.1',
    'localhost',
  ]);
  const client = files.uploadClientCert;
  await startListening(opts, children, {
    name: 'uploadproxy',
    args: [
      ...['uploadproxy', '--kubeconfig', proxyKubeconfig, '--listen', `127.0.0.1:${proxyPort}`],
      ...['--tls-cert-file', serving.certFile, '--tls-key-file', serving.keyFile],
      ...['--token-public-key-file', files.signingKey['id_rsa.pub'] ?? ''],
      ...[
        '--client-cert-file',
        client['tls.crt'] ?? '',
        '--client-key-file',
        client['tls.key'] ?? '',
      ],
      ...['--upload-server-ca-file', files.uploadServerBundle['ca-bundle.crt'] ?? ''],
      ...['--upload-server-address', 'cluster-ip'],
    ],
    port: proxyPort,
  });
  const url = `https://127.0.0.1:${proxyPort}`;
  setUploadProxyUrl(opts.api, url);
  return url;
}

/** Starts the components that are asked for and built. */
export async function startComponents(opts: ComponentOptions): Promise<Components> {
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => stopProcess(c, 3000)));
  };
  if (opts.controller) {
    if (built(opts.root, join('controller', 'main.js'))) {
      ensureNamespace(opts.api, CDI_NAMESPACE);
      const kubeconfig = await opts.serviceAccountKubeconfig(
        CDI_NAMESPACE,
        ServiceAccounts.Controller,
      );
      children.push(
        spawnCdi(
          opts.root,
          ['controller', '--kubeconfig', kubeconfig, '--namespace', CDI_NAMESPACE],
          join(opts.dataDir, 'controller.log'),
        ),
      );
      opts.log.info('controller started', { log: join(opts.dataDir, 'controller.log') });
    } else
      opts.log.warn('controller not built (dist/controller/main.js missing); running without it');
  }
  let uploadProxyUrl: string | undefined;
  if (opts.uploadProxy) {
    if (
      built(
        opts.root,
        join('uploadproxy', 'proxy', 'main.js'),
        join('uploadproxy', 'apiserver', 'main.js'),
      )
    ) {
      try {
        uploadProxyUrl = await startUploadPath(opts, children);
      } catch (err) {
        await stop();
        throw err;
      }
    } else
      opts.log.warn(
        'upload proxy not built (dist/uploadproxy/proxy/main.js missing); running without it',
      );
  }
  return { uploadProxyUrl, stop };
}
