// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox cluster for end-to-end tests and the README demo: a Kubernetes API over HTTPS on
 * 127.0.0.1, a hostPath provisioner, a kubelet that runs `cdi` pods as local processes, a garbage
 * collector, and (optionally) the CDI controller and upload proxy as child processes. The CRDs
 * are applied from `deploy/crds/` at start, as on a real cluster.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// js-yaml, not client-node's loadAllYaml: that one maps objects onto its models (`enum` → `_enum`).
import { loadAll } from 'js-yaml';
import { silentLogger, type Logger } from '../../common/logger.js';
import { ApiServer } from './api-server.js';
import { createCluster } from './cluster.js';
import { GarbageCollector } from './gc.js';
import { Kubelet } from './kubelet.js';
import { isRecord, type KObject } from './object.js';
import { makePki, makeToken, writeKubeconfig } from './pki.js';
import { Provisioner } from './provisioner.js';
import { ServiceProxy } from './service-proxy.js';
import { startComponents, type Components } from './components.js';

/** Options of {@link startSandbox}. */
export interface SandboxOptions {
  /** Where volumes, pod files and the kubeconfig live; a fresh temp dir when absent. */
  readonly dataDir?: string;
  /** Where to write the kubeconfig (default `<dataDir>/kubeconfig`). */
  readonly kubeconfigPath?: string;
  /** Run the CDI controller (`cdi controller --namespace cdi`) once it is built. */
  readonly controller?: boolean;
  /**
   * Run the upload path's token API (`cdi apiserver`, registered as an APIService) and proxy
   * (`cdi uploadproxy`) once built. They need the PKI the controller bootstraps in `cdi`.
   */
  readonly uploadProxy?: boolean;
  /**
   * Runs once the API answers, before the components start: a test can create objects there,
   * such as the upload PKI standing in for the controller's.
   */
  readonly beforeComponents?: (kubeconfigPath: string) => Promise<void>;
  /** How long the upload proxy waits for the controller's PKI objects (default 30 s). */
  readonly pkiTimeoutMs?: number;
  readonly log?: Logger;
}

/** A running sandbox. */
export interface Sandbox {
  readonly kubeconfigPath: string;
  /** `https://127.0.0.1:<port>`. */
  readonly server: string;
  readonly caPem: string;
  readonly token: string;
  readonly dataDir: string;
  /** URL of the upload proxy when it runs. */
  readonly uploadProxyUrl: string | undefined;
  /** URL of the controller's `/metrics` when it runs. */
  readonly metricsUrl: string | undefined;
  /** Ends every open watch (clients must resume), as an API server restart would. */
  closeWatches(): void;
  /** Stops every process and server; removes the data dir when the sandbox made it. */
  stop(): Promise<void>;
}

/** The repository root, found from this module's location (source or dist). */
export function repoRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // test/sandbox -> repo, or dist/test/sandbox -> repo
  const up = resolve(here, '..', '..');
  return up.endsWith(`${'/'}dist`) ? dirname(up) : up;
}

async function applyCrds(
  api: ReturnType<typeof createCluster>['api'],
  root: string,
  log: Logger,
): Promise<void> {
  const dir = join(root, 'deploy', 'crds');
  const files = await readdir(dir).catch(() => [] as string[]);
  const crdType = api.typeOf('apiextensions.k8s.io/v1', 'CustomResourceDefinition');
  if (crdType === undefined) return;
  for (const file of files.filter((f) => f.endsWith('.yaml')).sort()) {
    const docs = loadAll(await readFile(join(dir, file), 'utf8'));
    for (const doc of docs) {
      if (!isRecord(doc) || doc['kind'] !== 'CustomResourceDefinition') continue;
      // Recorded as `kubectl apply` would, so that a later `kubectl apply -k deploy/` is a no-op.
      const meta = isRecord(doc['metadata']) ? doc['metadata'] : {};
      const annotations = isRecord(meta['annotations']) ? meta['annotations'] : {};
      const applied = { ...doc, metadata: { ...meta, annotations } };
      api.create(crdType, '', {
        ...doc,
        metadata: {
          ...meta,
          annotations: {
            ...annotations,
            'kubectl.kubernetes.io/last-applied-configuration': `${sortedJson(applied)}\n`,
          },
        },
      });
      log.debug('crd applied', { file, name: (doc as KObject).metadata.name });
    }
  }
}

/** Common name of the client certificate the sandbox presents to aggregated API servers. */
export const FRONT_PROXY_CLIENT = 'front-proxy-client';

/**
 * `kube-system/extension-apiserver-authentication`, as kube-apiserver publishes it: how an
 * aggregated API server recognises requests the aggregator forwards.
 */
function publishAuthenticationConfig(
  api: ReturnType<typeof createCluster>['api'],
  frontProxyCaPem: string,
): void {
  const cmType = api.typeOf('v1', 'ConfigMap');
  if (cmType === undefined) return;
  api.create(cmType, 'kube-system', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'extension-apiserver-authentication', namespace: 'kube-system' },
    data: {
      'requestheader-client-ca-file': frontProxyCaPem,
      'requestheader-allowed-names': JSON.stringify([FRONT_PROXY_CLIENT]),
      'requestheader-username-headers': JSON.stringify(['X-Remote-User']),
      'requestheader-group-headers': JSON.stringify(['X-Remote-Group']),
      'requestheader-extra-headers-prefix': JSON.stringify(['X-Remote-Extra-']),
    },
  });
}

/** JSON with object keys sorted, as Go marshals the maps kubectl records. */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (isRecord(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${sortedJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Starts a sandbox; resolves once the API answers and the CRDs are registered. */
export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  const log = opts.log ?? silentLogger;
  const ownsDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'cdi-sandbox-')));
  await mkdir(dataDir, { recursive: true });
  const root = repoRoot();
  const [pki, frontProxy] = await Promise.all([
    makePki(join(dataDir, 'pki')),
    makePki(join(dataDir, 'front-proxy-pki'), [FRONT_PROXY_CLIENT], 'front-proxy-ca'),
  ]);
  const token = makeToken();
  const cluster = createCluster();
  publishAuthenticationConfig(cluster.api, frontProxy.caPem);
  await applyCrds(cluster.api, root, log);
  const gc = new GarbageCollector(cluster.api, log.child({ component: 'gc' }));
  const provisioner = new Provisioner({
    api: cluster.api,
    dataDir: join(dataDir, 'volumes'),
    log: log.child({ component: 'provisioner' }),
  });
  const kubelet = new Kubelet({
    api: cluster.api,
    dataDir: join(dataDir, 'pods'),
    repoRoot: root,
    podPool: cluster.podPool,
    log: log.child({ component: 'kubelet' }),
  });
  const services = new ServiceProxy(cluster.api, log.child({ component: 'services' }));
  const server = new ApiServer({
    api: cluster.api,
    token,
    tls: { key: pki.keyPem, cert: pki.certPem },
    frontProxy: { key: frontProxy.keyPem, cert: frontProxy.certPem },
    log: log.child({ component: 'apiserver' }),
    podLogPath: (ns, name, container) => kubelet.logPath(ns, name, container),
  });
  const url = await server.listen();
  const kubeconfigPath = opts.kubeconfigPath ?? join(dataDir, 'kubeconfig');
  await writeKubeconfig(kubeconfigPath, url, pki.caPem, token);
  gc.start();
  provisioner.start();
  kubelet.start();
  services.start();
  let components: Components | undefined;
  try {
    await opts.beforeComponents?.(kubeconfigPath);
    components = await startComponents({
      root,
      api: cluster.api,
      kubeconfigPath,
      dataDir,
      controller: opts.controller ?? false,
      uploadProxy: opts.uploadProxy ?? false,
      ca: pki,
      ...(opts.pkiTimeoutMs === undefined ? {} : { pkiTimeoutMs: opts.pkiTimeoutMs }),
      log,
    });
  } catch (err) {
    gc.stop();
    provisioner.stop();
    services.stop();
    await Promise.allSettled([kubelet.stop(), server.close()]);
    if (ownsDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  let stopped = false;
  return {
    kubeconfigPath,
    server: url,
    caPem: pki.caPem,
    token,
    dataDir,
    uploadProxyUrl: components.uploadProxyUrl,
    metricsUrl: components.metricsUrl,
    closeWatches: () => server.closeWatches(),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await components?.stop();
      gc.stop();
      provisioner.stop();
      services.stop();
      await kubelet.stop();
      await server.close();
      if (ownsDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
