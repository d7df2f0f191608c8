// SPDX-License-Identifier: Apache-2.0
/**
 * The CDI processes a real cluster would run as Deployments, run here as child processes of
 * the sandbox: the controller (`cdi controller --kubeconfig F`) and the upload proxy
 * (`cdi uploadproxy --kubeconfig F --listen 127.0.0.1:PORT --cert-file C --key-file K`). Each
 * starts only when its build output exists in dist/, so the sandbox works before they are written.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { stopProcess, trackGroup } from './container-process.js';
import { makePki } from './pki.js';
import { freePort } from '../helpers/free-port.js';

/** Options of {@link startComponents}. */
export interface ComponentOptions {
  readonly root: string;
  readonly kubeconfigPath: string;
  readonly dataDir: string;
  readonly controller: boolean;
  readonly uploadProxy: boolean;
  readonly caPem: string;
  readonly log: Logger;
}

/** The running components. */
export interface Components {
  readonly uploadProxyUrl: string | undefined;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;

async function waitPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new CdiError(ErrorCodes.Internal, `upload proxy exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new CdiError(
    ErrorCodes.Internal,
    `upload proxy did not listen on 127.0.0.1:${port} within ${READY_TIMEOUT_MS} ms`,
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

/** Starts the components that are asked for and built. */
export async function startComponents(opts: ComponentOptions): Promise<Components> {
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => stopProcess(c, 3000)));
  };
  const haveCli = existsSync(join(opts.root, 'dist', 'cmd', 'cdi.js'));
  if (opts.controller) {
    if (haveCli && existsSync(join(opts.root, 'dist', 'controller', 'main.js'))) {
      children.push(
        spawnCdi(
          opts.root,
          ['controller', '--kubeconfig', opts.kubeconfigPath],
          join(opts.dataDir, 'controller.log'),
        ),
      );
      opts.log.info('controller started', { log: join(opts.dataDir, 'controller.log') });
    } else
      opts.log.warn('controller not built (dist/controller/main.js missing); running without it');
  }
  let uploadProxyUrl: string | undefined;
  if (opts.uploadProxy) {
    if (haveCli && existsSync(join(opts.root, 'dist', 'uploadproxy', 'main.js'))) {
      const pkiDir = join(opts.dataDir, 'uploadproxy-pki');
      await makePki(pkiDir);
      const port = await freePort();
      const child = spawnCdi(
        opts.root,
        [
          'uploadproxy',
          '--kubeconfig',
          opts.kubeconfigPath,
          '--listen',
          `127.0.0.1:${port}`,
          '--cert-file',
          join(pkiDir, 'tls.crt'),
          '--key-file',
          join(pkiDir, 'tls.key'),
        ],
        join(opts.dataDir, 'uploadproxy.log'),
      );
      children.push(child);
      try {
        await waitPort(port, child);
      } catch (err) {
        await stop();
        throw err;
      }
      uploadProxyUrl = `https://127.0.0.1:${port}`;
    } else
      opts.log.warn(
        'upload proxy not built (dist/uploadproxy/main.js missing); running without it',
      );
  }
  return { uploadProxyUrl, stop };
}
