// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox cluster for end-to-end tests and the README demo: a Kubernetes API over HTTPS on
 * 127.0.0.1, a hostPath provisioner, a kubelet that runs pods as local processes or in runc, the
 * Deployment, ReplicaSet, endpoints and root-CA controllers, a service proxy, a garbage
 * collector, and CDI: installed from deploy/ with `kubectl apply -k` (`install`), or the
 * controller and upload path as child processes (`controller`, `uploadProxy`). The CRDs are
 * applied from `deploy/crds/` at start, as on a cluster where CDI was installed before.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// js-yaml, not client-node's loadAllYaml: that one maps objects onto its models (`enum` → `_enum`).
import { loadAll } from 'js-yaml';
import { silentLogger, type Logger } from '../../common/logger.js';
import { ApiServer, type AuditEvent } from './api-server.js';
import { createCluster } from './cluster.js';
import { GarbageCollector } from './gc.js';
import { Kubelet } from './kubelet.js';
import { ProcessRuntime, type ContainerRecord, type PodRuntime } from './pod-runtime.js';
import { loadPodImage, RuncRuntime } from './pod-runtime-runc.js';
import { startNodeRegistry, type NodeRegistry } from './image-registry.js';
import { ImageStore, type RegistryMirrors } from '../containers/image-store.js';
import { KUBELET_RESTART_BACKOFF, type RestartBackoff } from './pod-worker.js';
import { isRecord, type KObject } from './object.js';
import { makePki, makeToken, writeKubeconfig } from './pki.js';
import { Provisioner } from './provisioner.js';
import { SnapshotController } from './snapshots.js';
import { ServiceProxy } from './service-proxy.js';
import { TokenIssuer } from './tokens.js';
import { SANDBOX_USER } from './reviews.js';
import { startComponents, type Components } from './components.js';
import { EndpointsController } from './endpoints.js';
import {
  createKubernetesService,
  publishApiServerEndpoints,
  RootCaPublisher,
  serviceAccountAdmission,
} from './service-accounts.js';
import { WorkloadControllers } from './workloads.js';
import { installDeploy, type Installed } from './install.js';
import { Types } from './cluster.js';

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
  /**
   * Restart back-off of crashing containers; the kubelet's (10 s doubling to 5 min) unless
   * given. Tests that wait for restarts pass {@link FAST_RESTART_BACKOFF}.
   */
  readonly restartBackoff?: RestartBackoff;
  /**
   * The deploy/ tree whose CRDs, namespace, ServiceAccounts and RBAC are applied at start
   * (default: the repository's). A test points it at an edited copy.
   */
  readonly deployDir?: string;
  /**
   * Install CDI as a cluster admin would: `kubectl apply -k` of the deploy/ tree (Deployments,
   * Services, APIService, webhooks, the CDI resource), its pods run by the kubelet, instead of
   * the controller and upload path as child processes (`controller`/`uploadProxy` are then
   * ignored). Resolves once the three Deployments are available.
   */
  readonly install?: boolean;
  /** Told of every answered API request (the controller bench counts them). */
  readonly audit?: (event: AuditEvent) => void;
  /**
   * How pods run: `process` (default: the container's command as a local process) or `runc`
   * (the cdi image under runc, see pod-runtime-runc.ts).
   */
  readonly podRuntime?: PodRuntimeName;
  /** The OCI archive runc pods run (default `.image/cdi.oci.tar`, written by `npm run image`). */
  readonly image?: string;
  /**
   * Where runc pods' images come from: `archive` (default) runs the archive for every container
   * whatever its `image`; `registry` starts a local registry holding the archive as
   * `cdi-ts/cdi:latest` and resolves each container's `image` through it (pulled by digest,
   * unpacked once per digest, by imagePullPolicy; see image-registry.ts).
   */
  readonly imageSource?: ImageSourceName;
  /** `registry` only: more registry mirrors (registry → `host:port`) over docker.io's. */
  readonly registryMirrors?: RegistryMirrors;
  readonly log?: Logger;
}

/** The pod runtimes the sandbox offers. */
export type PodRuntimeName = 'process' | 'runc';

/** Where runc pods' images come from. */
export type ImageSourceName = 'archive' | 'registry';

/** The image archive `npm run image` writes by default. */
export function defaultImageArchive(): string {
  return join(repoRoot(), '.image', 'cdi.oci.tar');
}

async function makePodRuntime(
  opts: SandboxOptions,
  root: string,
): Promise<{ runtime: PodRuntime; registry: NodeRegistry | undefined }> {
  if ((opts.podRuntime ?? 'process') === 'process')
    return { runtime: new ProcessRuntime(root), registry: undefined };
  const archive = opts.image ?? defaultImageArchive();
  if (!existsSync(archive)) {
    throw new Error(
      `the runc pod runtime needs the image archive ${archive}: run \`npm run image\` or pass --image FILE`,
    );
  }
  if (opts.imageSource !== 'registry') {
    const image = await loadPodImage(archive, join(root, '.image', 'unpacked'));
    return { runtime: new RuncRuntime({ archive: image }), registry: undefined };
  }
  const registry = await startNodeRegistry(archive, opts.registryMirrors);
  const store = new ImageStore({
    cacheDir: join(root, '.image', 'pulled'),
    mirrors: registry.mirrors,
  });
  return { runtime: new RuncRuntime({ store }), registry };
}

/** A back-off for tests that wait for restarts: 250 ms doubling to 5 s. */
export const FAST_RESTART_BACKOFF: RestartBackoff = { initialMs: 250, maxMs: 5_000 };

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
  /** The controller's process id when it runs as a child process. */
  readonly controllerPid: number | undefined;
  /** How pods run. */
  readonly podRuntime: PodRuntimeName;
  /** The node's registry (`127.0.0.1:PORT`) when images come from one. */
  readonly registryHost: string | undefined;
  /** Containers that ended, oldest first, with their peak memory under runc. */
  containerRecords(): readonly ContainerRecord[];
  /**
   * Writes a kubeconfig whose token is the ServiceAccount's (issued by the sandbox, valid for
   * a year, like the legacy token Secrets) and returns its path.
   */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  /** Ends every open watch (clients must resume), as an API server restart would. */
  closeWatches(): void;
  /** Stops every process and server; removes the data dir when the sandbox made it. */
  stop(): Promise<void>;
}

/** The repository root, found from this module's location (source or dist). */
export function repoRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // test/sandbox -> repo, or dist-test/test/sandbox -> repo
  const up = resolve(here, '..', '..');
  return basename(up) === 'dist-test' ? dirname(up) : up;
}

async function applyCrds(
  api: ReturnType<typeof createCluster>['api'],
  deployDir: string,
  log: Logger,
): Promise<void> {
  const dir = join(deployDir, 'crds');
  const files = await readdir(dir).catch(() => [] as string[]);
  const crdType = api.typeOf('apiextensions.k8s.io/v1', 'CustomResourceDefinition');
  if (crdType === undefined) return;
  for (const file of files.filter((f) => f.endsWith('.yaml')).sort()) {
    const docs = loadAll(await readFile(join(dir, file), 'utf8'));
    for (const doc of docs) {
      if (
        !isRecord(doc) ||
        !isRecord(doc['metadata']) ||
        doc['kind'] !== 'CustomResourceDefinition'
      )
        continue;
      api.create(crdType, '', asApplied(doc as KObject));
      log.debug('crd applied', { file, name: (doc as KObject).metadata.name });
    }
  }
}

/** The kinds of deploy/ the sandbox applies at start (Deployments it runs as processes). */
const RBAC_KINDS = [
  'Namespace',
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
] as const;
/** The folders of deploy/ whose components the sandbox runs. */
const COMPONENT_DIRS = ['controller', 'apiserver', 'uploadproxy'] as const;

/**
 * Applies the namespace, ServiceAccounts and RBAC of deploy/'s components, namespaces first, so
 * that components running as their ServiceAccounts get exactly the permissions deploy/ grants.
 */
async function applyRbac(
  api: ReturnType<typeof createCluster>['api'],
  deployDir: string,
): Promise<void> {
  const docs: KObject[] = [];
  for (const sub of COMPONENT_DIRS) {
    const dir = join(deployDir, sub);
    for (const file of (await readdir(dir).catch(() => [] as string[])).sort()) {
      if (!file.endsWith('.yaml') || file === 'kustomization.yaml') continue;
      for (const doc of loadAll(await readFile(join(dir, file), 'utf8')))
        if (isRecord(doc) && isRecord(doc['metadata'])) docs.push(doc as KObject);
    }
  }
  for (const kind of RBAC_KINDS) {
    for (const doc of docs.filter((d) => d.kind === kind)) {
      const type = api.typeOf(String(doc.apiVersion), kind);
      if (type === undefined) continue;
      const ns = doc.metadata.namespace ?? 'default';
      if (api.find(type, ns, doc.metadata.name ?? '') === undefined)
        api.create(type, ns, asApplied(doc));
    }
  }
}

/**
 * Roles kube-apiserver bootstraps: `cluster-admin` (bound to `system:masters` and the sandbox's
 * admin) and the one deploy/ refers to: extension API servers read the front proxy's settings
 * through `kube-system/extension-apiserver-authentication-reader`.
 */
function bootstrapRoles(api: ReturnType<typeof createCluster>['api']): void {
  const role = api.typeOf('rbac.authorization.k8s.io/v1', 'Role');
  const clusterRole = api.typeOf('rbac.authorization.k8s.io/v1', 'ClusterRole');
  const clusterBinding = api.typeOf('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding');
  if (role === undefined || clusterRole === undefined || clusterBinding === undefined) return;
  api.create(clusterRole, '', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'cluster-admin', labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' } },
    rules: [
      { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
      { nonResourceURLs: ['*'], verbs: ['*'] },
    ],
  });
  // kube-apiserver binds system:masters; the sandbox's admin user is bound by name as well.
  api.create(clusterBinding, '', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'cluster-admin', labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:masters' },
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: SANDBOX_USER.name },
    ],
  });
  api.create(role, 'kube-system', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'extension-apiserver-authentication-reader', namespace: 'kube-system' },
    rules: [
      {
        apiGroups: [''],
        resources: ['configmaps'],
        resourceNames: ['extension-apiserver-authentication'],
        verbs: ['get', 'list', 'watch'],
      },
    ],
  });
}

/** A year: service-account kubeconfigs outlive any sandbox session. */
const SA_TOKEN_SECONDS = 365 * 24 * 3600;

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

/**
 * The object as `kubectl apply` records it (its last-applied configuration), so that a later
 * `kubectl apply -k deploy/` finds what it would have written and changes nothing.
 */
function asApplied(doc: KObject): KObject {
  const annotations = doc.metadata.annotations ?? {};
  const applied = { ...doc, metadata: { ...doc.metadata, annotations } };
  return {
    ...doc,
    metadata: {
      ...doc.metadata,
      annotations: {
        ...annotations,
        'kubectl.kubernetes.io/last-applied-configuration': `${sortedJson(applied)}\n`,
      },
    },
  };
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
  const cluster = createCluster();
  cluster.api.addAdmission(Types.Pods, serviceAccountAdmission(cluster.api));
  // Created first, so that its clusterIP is known when the serving certificate is issued.
  const kubernetesIp = createKubernetesService(cluster.api);
  const [pki, frontProxy] = await Promise.all([
    makePki(join(dataDir, 'pki'), [
      '127.0.0.1',
      'localhost',
      kubernetesIp,
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
    ]),
    makePki(join(dataDir, 'front-proxy-pki'), [FRONT_PROXY_CLIENT], 'front-proxy-ca'),
  ]);
  const token = makeToken();
  const tokens = new TokenIssuer();
  const deployDir = opts.deployDir ?? join(root, 'deploy');
  publishAuthenticationConfig(cluster.api, frontProxy.caPem);
  bootstrapRoles(cluster.api);
  await applyCrds(cluster.api, deployDir, log);
  // The CSI snapshot API a cluster's snapshot controller brings (test/sandbox/crds).
  await applyCrds(cluster.api, join(root, 'test', 'sandbox'), log);
  // When installing, kubectl applies them (recording what it applied, as on a cluster).
  if (opts.install !== true) await applyRbac(cluster.api, deployDir);
  const gc = new GarbageCollector(cluster.api, log.child({ component: 'gc' }));
  const provisioner = new Provisioner({
    api: cluster.api,
    dataDir: join(dataDir, 'volumes'),
    log: log.child({ component: 'provisioner' }),
  });
  const snapshots = new SnapshotController({
    api: cluster.api,
    dataDir: join(dataDir, 'snapshots'),
    log: log.child({ component: 'snapshot-controller' }),
  });
  const { runtime, registry } = await makePodRuntime(opts, root);
  const closeRegistry = async (): Promise<void> => registry?.close();
  const kubelet = new Kubelet({
    api: cluster.api,
    dataDir: join(dataDir, 'pods'),
    runtime,
    podPool: cluster.podPool,
    backoff: opts.restartBackoff ?? KUBELET_RESTART_BACKOFF,
    tokens,
    log: log.child({ component: 'kubelet' }),
  });
  const services = new ServiceProxy(cluster.api, log.child({ component: 'services' }));
  const workloads = new WorkloadControllers(cluster.api, log.child({ component: 'workloads' }));
  const endpoints = new EndpointsController(cluster.api, log.child({ component: 'endpoints' }));
  const rootCa = new RootCaPublisher(cluster.api, pki.caPem);
  const server = new ApiServer({
    api: cluster.api,
    token,
    tokens,
    tls: { key: pki.keyPem, cert: pki.certPem, clientCa: pki.caPem },
    frontProxy: { key: frontProxy.keyPem, cert: frontProxy.certPem },
    log: log.child({ component: 'apiserver' }),
    podLogPath: (ns, name, container) => kubelet.logPath(ns, name, container),
    ...(opts.audit === undefined ? {} : { audit: opts.audit }),
  });
  const url = await server.listen();
  publishApiServerEndpoints(cluster.api, Number(new URL(url).port));
  const kubeconfigPath = opts.kubeconfigPath ?? join(dataDir, 'kubeconfig');
  await writeKubeconfig(kubeconfigPath, url, pki.caPem, token);
  const serviceAccountKubeconfig = async (namespace: string, name: string): Promise<string> => {
    const saType = cluster.api.typeOf('v1', 'ServiceAccount');
    const sa = saType === undefined ? undefined : cluster.api.find(saType, namespace, name);
    const issued = tokens.issue({
      namespace,
      name,
      uid: sa?.metadata.uid ?? '',
      expirationSeconds: SA_TOKEN_SECONDS,
    });
    const path = join(dataDir, `kubeconfig-${namespace}-${name}`);
    await writeKubeconfig(path, url, pki.caPem, issued.token);
    return path;
  };
  gc.start();
  provisioner.start();
  snapshots.start();
  kubelet.start();
  services.start();
  rootCa.start();
  workloads.start();
  endpoints.start();
  const stopControllers = (): void => {
    gc.stop();
    provisioner.stop();
    snapshots.stop();
    services.stop();
    rootCa.stop();
    workloads.stop();
    endpoints.stop();
  };
  let components: Components | Installed | undefined;
  try {
    await opts.beforeComponents?.(kubeconfigPath);
    components =
      opts.install === true
        ? await installDeploy({ api: cluster.api, kubeconfigPath, deployDir, log })
        : await startComponents({
            root,
            api: cluster.api,
            kubeconfigPath,
            serviceAccountKubeconfig,
            dataDir,
            controller: opts.controller ?? false,
            uploadProxy: opts.uploadProxy ?? false,
            ca: pki,
            ...(opts.pkiTimeoutMs === undefined ? {} : { pkiTimeoutMs: opts.pkiTimeoutMs }),
            log,
          });
  } catch (err) {
    stopControllers();
    await Promise.allSettled([kubelet.stop(), server.close(), closeRegistry()]);
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
    controllerPid: components.controllerPid,
    metricsUrl: components.metricsUrl,
    podRuntime: runtime.name,
    registryHost: registry?.host,
    containerRecords: () => runtime.records(),
    serviceAccountKubeconfig,
    closeWatches: () => server.closeWatches(),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await components?.stop();
      stopControllers();
      await kubelet.stop();
      await server.close();
      await closeRegistry();
      if (ownsDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
