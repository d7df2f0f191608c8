// SPDX-License-Identifier: Apache-2.0
/**
 * CDI installed into the sandbox the way a cluster admin installs it: `kubectl apply -k` of the
 * deploy/ tree against the sandbox's own API, after which the Deployment controller, kubelet and
 * service proxy run the controller, token API and upload proxy from their pod templates with
 * in-cluster configuration. Waits until every Deployment in namespace `cdi` is available, then
 * names the controller's metrics Service and the upload proxy Service, and sets the CDI
 * resource's `spec.config.uploadProxyURLOverride` to the latter (a cluster would expose it
 * through a Route or Ingress).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from '../../common/logger.js';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { Types } from './cluster.js';
import type { ObjectApi } from './object-api.js';
import { getPath, isRecord, str } from './object.js';
import { PatchTypes } from './patch.js';
import { CDI_NAMESPACE } from './upload-wiring.js';

const run = promisify(execFile);

/** The Services deploy/ gives the controller's metrics and the upload proxy. */
export const InstalledServices = {
  Metrics: 'cdi-prometheus-metrics',
  UploadProxy: 'cdi-uploadproxy',
} as const;

/** Options of {@link installDeploy}. */
export interface InstallOptions {
  readonly api: ObjectApi;
  readonly kubeconfigPath: string;
  readonly deployDir: string;
  /** How long the Deployments may take to become available (default 120 s). */
  readonly timeoutMs?: number;
  readonly log: Logger;
}

/** CDI as installed. */
export interface Installed {
  readonly uploadProxyUrl: string | undefined;
  readonly controllerPid: undefined;
  readonly metricsUrl: string | undefined;
  stop(): Promise<void>;
}

/** `kubectl apply -k DIR` (or `delete -k`) against the sandbox; rejects with kubectl's output. */
export async function kubectlKustomize(
  verb: 'apply' | 'delete',
  deployDir: string,
  kubeconfigPath: string,
): Promise<string> {
  try {
    const { stdout } = await run(
      'kubectl',
      [
        '--kubeconfig',
        kubeconfigPath,
        verb,
        '-k',
        deployDir,
        ...(verb === 'delete' ? ['--wait=false'] : []),
      ],
      { maxBuffer: 16 << 20 },
    );
    return stdout;
  } catch (err) {
    const stderr = isRecord(err) ? str(err['stderr']) : '';
    throw new CdiError(
      ErrorCodes.Internal,
      `kubectl ${verb} -k ${deployDir} failed: ${stderr.trim() || String(err)}`,
      { cause: err },
    );
  }
}

/** Names the Deployments in `cdi` that are not available yet (all of them when none exist). */
export function unavailableDeployments(api: ObjectApi): string[] {
  const type = api.types.get(Types.Deployments);
  const items = type === undefined ? [] : api.list(type, CDI_NAMESPACE).items;
  if (items.length === 0) return ['(no Deployments in namespace cdi)'];
  return items
    .filter((d) => {
      const conds = getPath(d, ['status', 'conditions']);
      return !(
        Array.isArray(conds) &&
        conds.some((c) => isRecord(c) && c['type'] === 'Available' && c['status'] === 'True')
      );
    })
    .map((d) => d.metadata.name ?? '');
}

function serviceAddress(api: ObjectApi, name: string): string | undefined {
  const type = api.types.get(Types.Services);
  const svc = type === undefined ? undefined : api.find(type, CDI_NAMESPACE, name);
  const ip = getPath(svc, ['spec', 'clusterIP']);
  const ports = getPath(svc, ['spec', 'ports']);
  const port = Array.isArray(ports) ? ports.filter(isRecord)[0]?.['port'] : undefined;
  return typeof ip === 'string' && typeof port === 'number' ? `${ip}:${port}` : undefined;
}

/** Applies deploy/ and waits for CDI's Deployments (see the module comment). */
export async function installDeploy(opts: InstallOptions): Promise<Installed> {
  const out = await kubectlKustomize('apply', opts.deployDir, opts.kubeconfigPath);
  opts.log.info('deploy/ applied', { objects: out.trim().split('\n').length });
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const deadline = Date.now() + timeoutMs;
  let waiting = unavailableDeployments(opts.api);
  while (waiting.length > 0) {
    if (Date.now() > deadline) {
      throw new CdiError(
        ErrorCodes.Internal,
        `CDI's Deployments were not available within ${timeoutMs} ms: ${waiting.join(', ')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
    waiting = unavailableDeployments(opts.api);
  }
  const metrics = serviceAddress(opts.api, InstalledServices.Metrics);
  const proxy = serviceAddress(opts.api, InstalledServices.UploadProxy);
  const uploadProxyUrl = proxy === undefined ? undefined : `https://${proxy}`;
  const cdiType = opts.api.typeOf('cdi.kubevirt.io/v1beta1', 'CDI');
  if (uploadProxyUrl !== undefined && cdiType !== undefined) {
    opts.api.patch(cdiType, { namespace: '', name: 'cdi' }, PatchTypes.Merge, {
      spec: { config: { uploadProxyURLOverride: uploadProxyUrl } },
    });
  }
  opts.log.info('CDI installed from deploy/', { metrics, uploadProxyUrl });
  return {
    uploadProxyUrl,
    controllerPid: undefined,
    metricsUrl: metrics === undefined ? undefined : `http://${metrics}/metrics`,
    // The kubelet stops the pods with the sandbox.
    stop: () => Promise.resolve(),
  };
}
