// SPDX-License-Identifier: Apache-2.0
/**
 * Shared set-up of the controller's end-to-end suites: a sandbox cluster, the controller running
 * in-process against it (so a test can stop and restart it mid-import), a file server for image
 * sources, and helpers to wait for a DataVolume and to read what landed on its volume.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CoreV1Api,
  KubeConfig,
  type KubernetesObject,
  type V1PersistentVolumeClaim,
  type V1Pod,
} from '@kubernetes/client-node';
import { ControllerEnv as ControllerEnvVars } from '../../common/contract.js';
import { CDI_GROUP, CDI_VERSION, type DataVolume } from '../../common/api/datavolume.js';
import { createLogger, type Logger } from '../../common/logger.js';
import { parseControllerSettings } from '../../controller/config.js';
import { Controller } from '../../controller/controller.js';
import { KubeClient } from '../../controller/kube.js';
import { makeRawImage, makeTempDir, qemuConvertToRaw, qemuImg } from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { repoRoot, FAST_RESTART_BACKOFF, startSandbox, type Sandbox } from '../sandbox/index.js';
import { ServiceAccounts } from '../sandbox/components.js';
import {
  kubeConfigFor,
  kubectl,
  podRuntimeFromEnv,
  waitForObject,
  type PodRuntimeOptions,
} from '../sandbox/testing.js';
import { CDI_NAMESPACE as CONTROLLER_NAMESPACE } from '../sandbox/upload-wiring.js';

const CONTROLLER_SERVICE_ACCOUNT = ServiceAccounts.Controller;

/** What the waiters and readers below need of an environment. */
export interface ClusterClient {
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
}

/** A running sandbox with the controller. */
export interface ControllerEnv extends ClusterClient {
  readonly sandbox: Sandbox;
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  /** Starts the in-process controller (again, after {@link stopController}). */
  startController(): Promise<void>;
  /** Stops it, as if its process were killed. */
  stopController(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the sandbox and the controller; fails early when the importer is not built. Pods run
 * as `runtime` says (else as CDI_E2E_POD_RUNTIME says, else as local processes).
 */
export async function startControllerEnv(
  log?: Logger,
  runtime: PodRuntimeOptions = podRuntimeFromEnv(),
  /** More of the controller's environment (its settings), e.g. `STORAGE_EMULATOR_HOST`. */
  controllerEnv: Readonly<Record<string, string>> = {},
): Promise<ControllerEnv> {
  if (!existsSync(join(repoRoot(), 'dist', 'cmd', 'cdi.js'))) {
    throw new Error(
      'dist/cmd/cdi.js is missing: run `npm run build:ts` so the sandbox can run importer pods',
    );
  }
  const sandbox = await startSandbox({ restartBackoff: FAST_RESTART_BACKOFF, ...runtime });
  const kc = kubeConfigFor(sandbox);
  // The controller runs as deploy/'s ServiceAccount, so the RBAC of deploy/ is enforced.
  const controllerKc = new KubeConfig();
  controllerKc.loadFromFile(
    await sandbox.serviceAccountKubeconfig(CONTROLLER_NAMESPACE, CONTROLLER_SERVICE_ACCOUNT),
  );
  const logger =
    log ??
    createLogger({
      component: 'controller',
      level: process.env['CDI_E2E_LOG'] === '1' ? 'debug' : 'error',
    });
  let controller: Controller | undefined;
  const env: ControllerEnv = {
    sandbox,
    kc,
    core: kc.makeApiClient(CoreV1Api),
    async startController() {
      controller = new Controller({
        client: new KubeClient(controllerKc),
        settings: parseControllerSettings(
          { ...controllerEnv, [ControllerEnvVars.PodNamespace]: CONTROLLER_NAMESPACE },
          'e2e',
        ),
        log: logger,
        resyncMs: 5000,
      });
      await controller.start();
    },
    async stopController() {
      await controller?.stop();
      controller = undefined;
    },
    async stop() {
      await env.stopController();
      await sandbox.stop();
    },
  };
  await env.startController();
  return env;
}

/** Applies a manifest with the real kubectl. */
export async function apply(env: { readonly sandbox: Sandbox }, manifest: string): Promise<void> {
  const r = await kubectl(env.sandbox, ['apply', '-f', '-'], { input: manifest });
  if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
}

/** Waits (through a watch) until the DataVolume satisfies `predicate`. */
export function waitForDv(
  env: ClusterClient,
  namespace: string,
  name: string,
  predicate: (dv: DataVolume) => boolean,
  timeoutMs = 60_000,
): Promise<DataVolume> {
  // DataVolumes are plain JSON; client-node's KubernetesObject types metadata more narrowly.
  return waitForObject<KubernetesObject>(env.kc, {
    path: `/apis/${CDI_GROUP}/${CDI_VERSION}/namespaces/${namespace}/datavolumes`,
    name,
    until: (obj) => predicate(obj as DataVolume),
    timeoutMs,
  }) as Promise<DataVolume>;
}

/** Waits until the DataVolume's phase is `phase`. */
export function waitForPhase(
  env: ClusterClient,
  namespace: string,
  name: string,
  phase: string,
  timeoutMs = 60_000,
): Promise<DataVolume> {
  return waitForDv(env, namespace, name, (dv) => dv.status?.phase === phase, timeoutMs);
}

/** Waits until the DataVolume succeeded; true when its volume then holds `reference` ({@link sameDisk}). */
export async function succeededWithDisk(
  env: ClusterClient,
  namespace: string,
  name: string,
  reference: string,
): Promise<boolean> {
  await waitForPhase(env, namespace, name, 'Succeeded');
  return sameDisk(reference, await volumeData(env, namespace, name));
}

/** Waits until the claim satisfies `predicate`. */
export function waitForPvc(
  env: ClusterClient,
  namespace: string,
  name: string,
  predicate: (pvc: V1PersistentVolumeClaim) => boolean,
  timeoutMs = 60_000,
): Promise<V1PersistentVolumeClaim> {
  return waitForObject<V1PersistentVolumeClaim>(env.kc, {
    path: `/api/v1/namespaces/${namespace}/persistentvolumeclaims`,
    name,
    until: predicate,
    timeoutMs,
  });
}

/** Waits until the pod satisfies `predicate`. */
export function waitForPod(
  env: ClusterClient,
  namespace: string,
  name: string,
  predicate: (pod: V1Pod) => boolean,
  timeoutMs = 60_000,
): Promise<V1Pod> {
  return waitForObject<V1Pod>(env.kc, {
    path: `/api/v1/namespaces/${namespace}/pods`,
    name,
    until: predicate,
    timeoutMs,
  });
}

/** Host path of what a bound claim holds: `disk.img` in its directory, or the block file. */
export async function volumeData(
  env: ClusterClient,
  namespace: string,
  pvcName: string,
): Promise<string> {
  const pvc = await env.core.readNamespacedPersistentVolumeClaim({ namespace, name: pvcName });
  const pv = await env.core.readPersistentVolume({ name: pvc.spec?.volumeName ?? '' });
  const path = pv.spec?.hostPath?.path ?? '';
  return pvc.spec?.volumeMode === 'Block' ? path : join(path, 'disk.img');
}

/**
 * True when `actual` holds exactly the bytes of `reference` (raw) followed by zeros only: the
 * importer grows the image to the claim's usable size, as CDI's resize does.
 */
export async function sameDisk(reference: string, actual: string): Promise<boolean> {
  try {
    await qemuImg('compare', '-q', '-f', 'raw', '-F', 'raw', reference, actual);
    return true;
  } catch {
    return false;
  }
}

/** Process ids of this test process's descendants (the sandbox's pod processes among them). */
async function descendants(root: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the parenthesised command, which may contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  for (const pid of parents.keys()) {
    for (let p = parents.get(pid); p !== undefined && p > 1; p = parents.get(p)) {
      if (p === root) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}

/**
 * Kills (SIGKILL) the importer process of the DataVolume with uid `ownerUid`: the descendant of
 * this test process whose environment carries `OWNER_UID=<uid>`. Returns how many were killed.
 */
export async function killImporter(ownerUid: string): Promise<number> {
  let killed = 0;
  for (const pid of await descendants(process.pid)) {
    try {
      const environ = await readFile(`/proc/${pid}/environ`, 'utf8');
      if (environ.split('\0').includes(`OWNER_UID=${ownerUid}`)) {
        process.kill(pid, 'SIGKILL');
        killed++;
      }
    } catch {
      // Gone already, or not ours to read.
    }
  }
  return killed;
}

/** A v1beta1 DataVolume with an http source; `extra` is inserted into `spec` verbatim. */
export function httpDvManifest(name: string, url: string, extra = '', size = '64Mi'): string {
  return `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: ${name}
spec:
  source:
    http:
      url: ${url}
${extra}  storage:
    resources:
      requests:
        storage: ${size}
`;
}

/** A v1beta1 blank DataVolume of `size`, in `namespace` when one is given. */
export function blankDvManifest(name: string, size = '16Mi', namespace?: string): string {
  return `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: ${name}
${namespace === undefined ? '' : `  namespace: ${namespace}\n`}spec:
  source:
    blank: {}
  storage:
    resources:
      requests:
        storage: ${size}
`;
}

/** A 16 MiB raw disk served fast and rate-limited (to act mid-import), with its reference. */
export interface SlowDiskFixture {
  readonly tmp: { readonly dir: string; cleanup(): Promise<void> };
  readonly rawRef: string;
  readonly files: TestHttpServer;
  readonly slow: TestHttpServer;
  close(): Promise<void>;
}

/** Starts {@link SlowDiskFixture}; `bytesPerSecond` sets how long the slow import lasts. */
export async function startSlowDiskFixture(
  prefix: string,
  bytesPerSecond: number,
): Promise<SlowDiskFixture> {
  const MIB = 1024 * 1024;
  const tmp = await makeTempDir(prefix);
  const raw = await makeRawImage(join(tmp.dir, 'disk.raw'), 16 * MIB, [
    { offset: 0, length: 2 * MIB, seed: 7 },
    { offset: 6 * MIB, length: 10 * MIB, seed: 8 },
  ]);
  const rawRef = await qemuConvertToRaw(raw, join(tmp.dir, 'ref.raw'));
  const files = await startTestHttpServer({ files: { '/disk.raw': { path: raw } } });
  const slow = await startTestHttpServer({ files: { '/disk.raw': { path: raw } }, bytesPerSecond });
  return {
    tmp,
    rawRef,
    files,
    slow,
    async close() {
      await Promise.all([files.close(), slow.close()]);
      await tmp.cleanup();
    },
  };
}

/** Waits until a DataVolume reports a progress strictly between 0 and 100 (mid-import). */
export function waitForMidImport(
  env: ControllerEnv,
  name: string,
  namespace = 'default',
): Promise<DataVolume> {
  return waitForDv(
    env,
    namespace,
    name,
    (d) => /^[1-9]\d?(\.\d+)?%$/.test(d.status?.progress ?? ''),
    30_000,
  );
}
