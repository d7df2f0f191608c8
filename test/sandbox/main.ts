// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run sandbox -- --kubeconfig PATH [--data-dir DIR] [--no-controller] [--no-uploadproxy]`:
 * starts the sandbox cluster with the controller (`--namespace cdi`) and the upload path (token
 * API registered as an APIService, upload proxy named in CDIConfig), prints `kubeconfig: PATH`
 * (and `uploadproxy: URL`) when ready, and stops everything on SIGINT/SIGTERM. The upload path
 * needs the controller's PKI, so `--no-controller` implies `--no-uploadproxy`.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { createLogger } from '../../common/logger.js';
import { startSandbox } from './index.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      'data-dir': { type: 'string' },
      'no-controller': { type: 'boolean', default: false },
      'no-uploadproxy': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const log = createLogger({
    component: 'sandbox',
    level: values.verbose ? 'debug' : 'info',
    format: 'text',
  });
  const sandbox = await startSandbox({
    ...(values.kubeconfig === undefined ? {} : { kubeconfigPath: resolve(values.kubeconfig) }),
    ...(values['data-dir'] === undefined ? {} : { dataDir: resolve(values['data-dir']) }),
    controller: !values['no-controller'],
    uploadProxy: !values['no-uploadproxy'] && !values['no-controller'],
    log,
  });
  process.stdout.write(`kubeconfig: ${sandbox.kubeconfigPath}\n`);
  if (sandbox.metricsUrl !== undefined) process.stdout.write(`metrics: ${sandbox.metricsUrl}\n`);
  process.stdout.write(`server: ${sandbox.server}\n`);
  if (sandbox.uploadProxyUrl !== undefined)
    process.stdout.write(`uploadproxy: ${sandbox.uploadProxyUrl}\n`);
  await new Promise<void>((done) => {
    const onSignal = (): void => done();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  await sandbox.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`sandbox: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
