// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run sandbox -- --kubeconfig PATH [--data-dir DIR] [--processes] [--no-controller]
 * [--no-uploadproxy] [--restart-backoff INITIAL_MS[:MAX_MS]] [--pod-runtime process|runc]
 * [--image FILE] [--image-source archive|registry] [--registry-mirror REGISTRY=HOST:PORT ...]`:
 * starts the sandbox cluster and installs CDI into it from deploy/ (`kubectl
 * apply -k`: the controller, token API and upload proxy run as the pods of their Deployments),
 * prints `kubeconfig: PATH`, `metrics: URL` and `upload proxy: URL` when ready, and stops
 * everything on SIGINT/SIGTERM. `--processes` runs the three as child processes of the sandbox
 * instead (the e2e suites' default), where `--no-uploadproxy` leaves the upload path out;
 * `--no-controller` installs nothing but the CRDs and RBAC (and implies `--no-uploadproxy`: the
 * upload path needs the controller's PKI). Crashing
 * containers restart with the kubelet's back-off (10 s doubling to 5 min) unless
 * `--restart-backoff` shortens it. `--pod-runtime runc` runs every pod from the image archive
 * (`--image`, default `.image/cdi.oci.tar` of `npm run image`) with runc; `process` (the
 * default) runs the pods' commands as local processes. `--image-source registry` pushes the
 * image into a local registry (`cdi-ts/cdi:latest`, docker.io mirrored there) and pulls every
 * container's image through it by digest; `--registry-mirror` adds mirrors.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { createLogger } from '../../common/logger.js';
import { startSandbox, type ImageSourceName, type PodRuntimeName } from './index.js';
import type { RestartBackoff } from './pod-worker.js';

/** `INITIAL_MS[:MAX_MS]`; the cap defaults to 30 × the first delay (the kubelet's ratio). */
function parseBackoff(text: string): RestartBackoff {
  const [first, second] = text.split(':');
  const initialMs = Number(first);
  const maxMs = second === undefined ? initialMs * 30 : Number(second);
  if (
    !Number.isInteger(initialMs) ||
    !Number.isInteger(maxMs) ||
    initialMs <= 0 ||
    maxMs < initialMs
  )
    throw new Error(
      `--restart-backoff ${text}: expected INITIAL_MS[:MAX_MS], positive, MAX_MS >= INITIAL_MS`,
    );
  return { initialMs, maxMs };
}

/** `REGISTRY=HOST:PORT` entries as a mirror table. */
function parseMirrors(entries: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const [registry, host, ...rest] = entry.split('=');
    if (
      registry === undefined ||
      registry === '' ||
      host === undefined ||
      host === '' ||
      rest.length > 0
    )
      throw new Error(`--registry-mirror ${entry}: expected REGISTRY=HOST:PORT`);
    out[registry] = host;
  }
  return out;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      'data-dir': { type: 'string' },
      processes: { type: 'boolean', default: false },
      'no-controller': { type: 'boolean', default: false },
      'no-uploadproxy': { type: 'boolean', default: false },
      'restart-backoff': { type: 'string' },
      'pod-runtime': { type: 'string', default: 'process' },
      image: { type: 'string' },
      'image-source': { type: 'string' },
      'registry-mirror': { type: 'string', multiple: true, default: [] },
      verbose: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const runtime = values['pod-runtime'];
  if (runtime !== 'process' && runtime !== 'runc')
    throw new Error(`--pod-runtime ${runtime}: expected process or runc`);
  const podRuntime: PodRuntimeName = runtime;
  // runc pods pull by digest from the local registry, as a kubelet would, unless told otherwise.
  const source = values['image-source'] ?? (podRuntime === 'runc' ? 'registry' : 'archive');
  if (source !== 'archive' && source !== 'registry')
    throw new Error(`--image-source ${source}: expected archive or registry`);
  const imageSource: ImageSourceName = source;
  const log = createLogger({
    component: 'sandbox',
    level: values.verbose ? 'debug' : 'info',
    format: 'text',
  });
  const sandbox = await startSandbox({
    ...(values.kubeconfig === undefined ? {} : { kubeconfigPath: resolve(values.kubeconfig) }),
    ...(values['data-dir'] === undefined ? {} : { dataDir: resolve(values['data-dir']) }),
    install: !values.processes && !values['no-controller'],
    controller: !values['no-controller'],
    uploadProxy: !values['no-uploadproxy'] && !values['no-controller'],
    ...(values['restart-backoff'] === undefined
      ? {}
      : { restartBackoff: parseBackoff(values['restart-backoff']) }),
    podRuntime,
    ...(values.image === undefined ? {} : { image: resolve(values.image) }),
    imageSource,
    registryMirrors: parseMirrors(values['registry-mirror']),
    log,
  });
  process.stdout.write(`kubeconfig: ${sandbox.kubeconfigPath}\n`);
  if (sandbox.metricsUrl !== undefined) process.stdout.write(`metrics: ${sandbox.metricsUrl}\n`);
  process.stdout.write(`server: ${sandbox.server}\n`);
  process.stdout.write(`pod runtime: ${sandbox.podRuntime}\n`);
  if (sandbox.registryHost !== undefined)
    process.stdout.write(`registry: ${sandbox.registryHost}\n`);
  if (sandbox.uploadProxyUrl !== undefined)
    process.stdout.write(`upload proxy: ${sandbox.uploadProxyUrl}\n`);
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
