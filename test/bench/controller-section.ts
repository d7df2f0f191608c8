// SPDX-License-Identifier: Apache-2.0
/**
 * The `controller` section of `npm run bench`: the control plane at scale, in the sandbox.
 * 1. N DataVolumes at once (blank and small HTTP imports alternating) with the controller: end to
 *    end time, controller CPU per DataVolume (from /proc), API requests and writes per DataVolume
 *    by verb (from the sandbox's audit hook), 409s, peak controller RSS, and `kubectl get dv`
 *    latency while they run against the same command on the idle cluster.
 * 2. The same pods, as the controller wrote them, run by a sandbox without a controller: the time
 *    the sandbox itself needs, and `kubectl get dv` latency meanwhile over as many DataVolumes,
 *    so the controller's share of (1) is visible.
 * 3. `cached` DataVolumes that already Succeeded, created before the controller starts: its RSS
 *    once its caches hold them and it is idle, and the writes it makes for them (should be none).
 * Timings are never pass/fail; the goals are printed beside the figures.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type V1PersistentVolumeClaim,
  type V1Pod,
} from '@kubernetes/client-node';
import { Annotations } from '../../common/contract.js';
import {
  CDI_GROUP,
  CDI_VERSION,
  type DataVolume,
  type DataVolumeCondition,
} from '../../common/api/datavolume.js';
import { startTestHttpServer } from '../helpers/http-server.js';
import type { AuditEvent } from '../sandbox/api-server.js';
import { startSandbox, type Sandbox } from '../sandbox/index.js';

/** Options of {@link controllerSection}. */
export interface ControllerSectionOptions {
  /** DataVolumes created at once (default 200). */
  readonly count: number;
  /** Succeeded DataVolumes held in the controller's caches for the steady-state RSS (1,000). */
  readonly cached: number;
  readonly print: (line: string) => void;
}

const NAMESPACE = 'bench';
const WAIT_LIMIT_MS = 30 * 60_000;
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const CONTROLLER_USER = 'system:serviceaccount:cdi:';

/** The controller's API requests (watches aside), by verb and resource (`patch datavolumes/status`). */
class AuditCounter {
  readonly byVerb = new Map<string, number>();
  /** Writes by namespace, then by verb and resource. */
  readonly writesIn = new Map<string, Map<string, number>>();
  conflicts = 0;
  writes = 0;
  statusWrites = 0;

  record(e: AuditEvent): void {
    if (!e.user.startsWith(CONTROLLER_USER) || e.verb === 'watch') return;
    const sub = 'subresource' in e ? e.subresource : undefined;
    const resource = 'resource' in e ? e.resource : e.path;
    const key = `${e.verb} ${resource}${sub === undefined ? '' : `/${sub}`}`;
    this.byVerb.set(key, (this.byVerb.get(key) ?? 0) + 1);
    if (e.code === 409) this.conflicts++;
    if (WRITE_VERBS.has(e.verb)) {
      this.writes++;
      const ns = 'namespace' in e ? e.namespace : '';
      const counts = this.writesIn.get(ns) ?? new Map<string, number>();
      counts.set(key, (counts.get(key) ?? 0) + 1);
      this.writesIn.set(ns, counts);
      if (sub === 'status') this.statusWrites++;
    }
  }

  total(): number {
    return [...this.byVerb.values()].reduce((a, b) => a + b, 0);
  }
}

/** CPU seconds (user + system) of a process, from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100;
}

/** Waits until a process spends no CPU over 5 s (under 50 ms), 2 min at most. */
async function untilIdle(pid: number): Promise<void> {
  let last = await cpuSeconds(pid);
  const deadline = Date.now() + 120_000;
  for (;;) {
    await new Promise((r) => setTimeout(r, 5000));
    const now = await cpuSeconds(pid);
    if (now - last < 0.05 || Date.now() > deadline) return;
    last = now;
  }
}

/** `VmRSS` and `VmHWM` of a process in MiB. */
async function memoryMiB(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1]);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

function clients(sandbox: Sandbox): { core: CoreV1Api; custom: CustomObjectsApi; kc: KubeConfig } {
  const kc = new KubeConfig();
  kc.loadFromFile(sandbox.kubeconfigPath);
  return { core: kc.makeApiClient(CoreV1Api), custom: kc.makeApiClient(CustomObjectsApi), kc };
}

function dataVolume(name: string, url: string | undefined): DataVolume {
  return {
    apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
    kind: 'DataVolume',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      source: url === undefined ? { blank: {} } : { http: { url } },
      pvc: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '64Mi' } } },
    },
  };
}

/** Runs `work` on at most `limit` items at a time. */
async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Polls until `done` says every object is there, or the limit passes. */
async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} did not finish in time`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Wall time of one `kubectl get dv -A` in ms. */
async function kubectlGetDv(kubeconfig: string): Promise<number> {
  const start = performance.now();
  const child = spawn('kubectl', ['--kubeconfig', kubeconfig, 'get', 'dv', '-A', '-o', 'name'], {
    stdio: 'ignore',
  });
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`bench: kubectl get dv exited ${String(code)}`);
  return performance.now() - start;
}

/** A copy of `o` without `key` (a claim's bound volume, a pod's node: the new sandbox assigns them). */
function withoutKey<T extends object, K extends keyof T>(o: T, key: K): Omit<T, K> {
  const copy = { ...o };
  delete copy[key];
  return copy;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

/** Samples `kubectl get dv` every second until stopped. */
function sampleKubectl(kubeconfig: string): { stop: () => Promise<number[]> } {
  const samples: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      samples.push(await kubectlGetDv(kubeconfig));
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return samples;
    },
  };
}

interface ScaleResult {
  readonly seconds: number;
  readonly cpuMsPerDv: number;
  readonly peakRss: number;
  readonly audit: AuditCounter;
  readonly idleKubectl: number[];
  readonly busyKubectl: number[];
  readonly pods: V1Pod[];
  readonly claims: V1PersistentVolumeClaim[];
}

/** Phase 1: N DataVolumes at once with the controller. */
async function withController(count: number, url: string): Promise<ScaleResult> {
  const audit = new AuditCounter();
  const sandbox = await startSandbox({ controller: true, audit: (e) => audit.record(e) });
  try {
    const pid = sandbox.controllerPid;
    if (pid === undefined) throw new Error('bench: the controller is not built (npm run build)');
    const { core, custom, kc } = clients(sandbox);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    // The pods the controller writes, as it wrote them, for phase 2.
    const pods = new Map<string, V1Pod>();
    const watch = await new Watch(kc).watch(
      `/api/v1/namespaces/${NAMESPACE}/pods`,
      {},
      (type: string, pod: V1Pod) => {
        const name = pod.metadata?.name;
        if (type === 'ADDED' && name !== undefined && !pods.has(name)) pods.set(name, pod);
      },
      () => undefined,
    );
    // Let the controller settle (PKI, StorageProfiles, the collection it runs once idle) before
    // the clock starts.
    await untilIdle(pid);
    const idleKubectl = [];
    for (let i = 0; i < 5; i++) idleKubectl.push(await kubectlGetDv(sandbox.kubeconfigPath));
    const names = Array.from({ length: count }, (_, i) => `dv-${String(i).padStart(4, '0')}`);
    const cpu0 = await cpuSeconds(pid);
    const sampler = sampleKubectl(sandbox.kubeconfigPath);
    const start = performance.now();
    await inParallel(names, 50, async (name) => {
      const i = Number(name.slice(3));
      await custom.createNamespacedCustomObject({
        group: CDI_GROUP,
        version: CDI_VERSION,
        namespace: NAMESPACE,
        plural: 'datavolumes',
        body: dataVolume(name, i % 2 === 0 ? undefined : url),
      });
    });
    await until('the DataVolumes', async () => {
      const list = (await custom.listNamespacedCustomObject({
        group: CDI_GROUP,
        version: CDI_VERSION,
        namespace: NAMESPACE,
        plural: 'datavolumes',
      })) as { items: DataVolume[] };
      const failed = list.items.filter((dv) => dv.status?.phase === 'Failed');
      if (failed.length > 0) throw new Error(`bench: ${failed.length} DataVolumes failed`);
      return list.items.filter((dv) => dv.status?.phase === 'Succeeded').length === count;
    });
    const seconds = (performance.now() - start) / 1000;
    const busyKubectl = await sampler.stop();
    const cpu = (await cpuSeconds(pid)) - cpu0;
    const { peak } = await memoryMiB(pid);
    watch.abort();
    const claims = (await core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE })).items;
    return {
      seconds,
      cpuMsPerDv: (cpu * 1000) / count,
      peakRss: peak,
      audit,
      idleKubectl,
      busyKubectl,
      pods: [...pods.values()],
      claims,
    };
  } finally {
    await sandbox.stop();
  }
}

/**
 * Phase 2: the controller's pods and claims, run by a sandbox without a controller; `kubectl get
 * dv` is sampled meanwhile over as many DataVolumes (left without a controller to serve them), so
 * the sandbox's own share of its latency is visible.
 */
async function podsAlone(
  claims: readonly V1PersistentVolumeClaim[],
  pods: readonly V1Pod[],
): Promise<{ seconds: number; kubectl: number[] }> {
  const sandbox = await startSandbox({ controller: false });
  try {
    const { core, custom } = clients(sandbox);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await inParallel(claims, 20, async (c) => {
      await custom.createNamespacedCustomObject({
        group: CDI_GROUP,
        version: CDI_VERSION,
        namespace: NAMESPACE,
        plural: 'datavolumes',
        body: dataVolume(c.metadata?.name ?? '', undefined),
      });
    });
    for (const c of claims)
      await core.createNamespacedPersistentVolumeClaim({
        namespace: NAMESPACE,
        body: {
          metadata: { name: c.metadata?.name ?? '', annotations: c.metadata?.annotations ?? {} },
          ...(c.spec === undefined ? {} : { spec: withoutKey(c.spec, 'volumeName') }),
        },
      });
    const sampler = sampleKubectl(sandbox.kubeconfigPath);
    const start = performance.now();
    await inParallel(pods, 10, async (p) => {
      await core.createNamespacedPod({
        namespace: NAMESPACE,
        body: {
          metadata: { name: p.metadata?.name ?? '', labels: p.metadata?.labels ?? {} },
          ...(p.spec === undefined ? {} : { spec: withoutKey(p.spec, 'nodeName') }),
        },
      });
    });
    await until('the pods', async () => {
      const list = await core.listNamespacedPod({ namespace: NAMESPACE });
      return list.items.filter((p) => p.status?.phase === 'Succeeded').length === pods.length;
    });
    const seconds = (performance.now() - start) / 1000;
    return { seconds, kubectl: await sampler.stop() };
  } finally {
    await sandbox.stop();
  }
}

/** The status the controller leaves on a DataVolume whose blank import finished. */
function succeededStatus(name: string): DataVolume['status'] {
  const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const condition = (
    type: DataVolumeCondition['type'],
    status: DataVolumeCondition['status'],
    reason: string,
    message: string,
  ): DataVolumeCondition => ({
    type,
    status,
    reason,
    message,
    lastTransitionTime: at,
    lastHeartbeatTime: at,
  });
  return {
    phase: 'Succeeded',
    progress: '100.0%',
    restartCount: 0,
    claimName: name,
    conditions: [
      condition('Ready', 'True', '', ''),
      condition('Bound', 'True', 'Bound', `PVC ${name} Bound`),
      condition('Running', 'False', 'Completed', 'Import Complete'),
    ],
  };
}

/** Phase 3: the controller starting over `cached` Succeeded DataVolumes. */
async function steadyState(cached: number): Promise<{ rss: number; audit: AuditCounter }> {
  const audit = new AuditCounter();
  const sandbox = await startSandbox({
    controller: true,
    audit: (e) => audit.record(e),
    beforeComponents: async (kubeconfigPath) => {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfigPath);
      const core = kc.makeApiClient(CoreV1Api);
      const custom = kc.makeApiClient(CustomObjectsApi);
      await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
      const names = Array.from({ length: cached }, (_, i) => `held-${String(i).padStart(4, '0')}`);
      await inParallel(names, 20, async (name) => {
        const dv = (await custom.createNamespacedCustomObject({
          group: CDI_GROUP,
          version: CDI_VERSION,
          namespace: NAMESPACE,
          plural: 'datavolumes',
          body: dataVolume(name, undefined),
        })) as DataVolume;
        await core.createNamespacedPersistentVolumeClaim({
          namespace: NAMESPACE,
          body: {
            metadata: {
              name,
              // As the controller leaves the claim of a finished blank import.
              annotations: {
                [Annotations.PodPhase]: 'Succeeded',
                [Annotations.Source]: 'none',
                [Annotations.ImportPodName]: `importer-${name}`,
                [Annotations.PodRestarts]: '0',
                [Annotations.RunningCondition]: 'false',
                [Annotations.RunningConditionReason]: 'Completed',
                [Annotations.RunningConditionMessage]: 'Import Complete',
              },
              ownerReferences: [
                {
                  apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
                  kind: 'DataVolume',
                  name,
                  uid: dv.metadata?.uid ?? '',
                  controller: true,
                  blockOwnerDeletion: true,
                },
              ],
            },
            spec: {
              accessModes: ['ReadWriteOnce'],
              resources: { requests: { storage: '64Mi' } },
            },
          },
        });
        await custom.patchNamespacedCustomObjectStatus(
          {
            group: CDI_GROUP,
            version: CDI_VERSION,
            namespace: NAMESPACE,
            plural: 'datavolumes',
            name,
            body: { status: succeededStatus(name) },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      });
      // The claims bound before the controller starts, so what it finds is finished history.
      await until('the claims to bind', async () => {
        const list = await core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE });
        return list.items.filter((c) => c.status?.phase === 'Bound').length === cached;
      });
    },
  });
  try {
    const pid = sandbox.controllerPid;
    if (pid === undefined) throw new Error('bench: the controller is not built (npm run build)');
    // The caches are full and every key was reconciled.
    await untilIdle(pid);
    return { rss: (await memoryMiB(pid)).rss, audit };
  } finally {
    await sandbox.stop();
  }
}

const fmt = (n: number, digits = 1): string => n.toFixed(digits);
const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');

/** Runs the three phases and prints the report. */
export async function controllerSection(opts: ControllerSectionOptions): Promise<void> {
  const disk = Buffer.alloc(8 << 20);
  for (let i = 0; i < 1 << 20; i += 4) disk.writeUInt32LE((i * 2654435761) >>> 0, i);
  const server = await startTestHttpServer({ files: { '/small.raw': disk } });
  try {
    const { count } = opts;
    const r = await withController(count, server.url('/small.raw'));
    const perDv = (n: number): string => fmt(n / count);
    const writesPerDv = r.audit.writes / count;
    opts.print(
      `controller: ${count} DataVolumes (blank and 8 MiB HTTP imports) succeeded in ${fmt(r.seconds)} s\n`,
    );
    opts.print(
      `  controller CPU ${fmt(r.cpuMsPerDv)} ms per DataVolume (goal <= 20: ${verdict(r.cpuMsPerDv <= 20)}); ` +
        `peak RSS ${fmt(r.peakRss, 0)} MiB\n`,
    );
    // The start-up requests (PKI, profiles, informers' lists) round to 0.0 per DataVolume.
    const verbs = [...r.audit.byVerb.entries()]
      .filter(([, n]) => n / count >= 0.05)
      .sort((a, b) => b[1] - a[1])
      .map(([verb, n]) => `${verb} ${perDv(n)}`)
      .join(', ');
    opts.print(
      `  API requests per DataVolume ${perDv(r.audit.total())} (${verbs}); writes ${fmt(writesPerDv)} ` +
        `(goal <= 10: ${verdict(writesPerDv <= 10)}), of which status ${perDv(r.audit.statusWrites)}; ` +
        `409 conflicts ${r.audit.conflicts}\n`,
    );
    opts.print(
      `  kubectl get dv -A: idle median ${fmt(median(r.idleKubectl), 0)} ms, during the imports ` +
        `median ${fmt(median(r.busyKubectl), 0)} ms, max ${fmt(Math.max(...r.busyKubectl), 0)} ms ` +
        `(${r.busyKubectl.length} samples)\n`,
    );
    const alone = await podsAlone(r.claims, r.pods);
    opts.print(
      `  the same ${r.pods.length} pods without the controller: ${fmt(alone.seconds)} s; ` +
        `kubectl get dv -A meanwhile median ${fmt(median(alone.kubectl), 0)} ms, ` +
        `max ${fmt(Math.max(...alone.kubectl), 0)} ms (${alone.kubectl.length} samples)\n`,
    );
    if (opts.cached > 0) {
      const s = await steadyState(opts.cached);
      // Writes to the bench namespace only: the start-up's own (PKI, profiles, lease) are not
      // made for the DataVolumes.
      const forThem = [...(s.audit.writesIn.get(NAMESPACE) ?? new Map<string, number>())];
      const writes = forThem.reduce((sum, [, n]) => sum + n, 0);
      opts.print(
        `  steady state with ${opts.cached} Succeeded DataVolumes cached: RSS ${fmt(s.rss, 0)} MiB ` +
          `(goal <= 150: ${verdict(s.rss <= 150)}); writes made for them ${writes}` +
          `${forThem.length === 0 ? '' : ` (${forThem.map(([k, n]) => `${k} ${n}`).join(', ')})`}\n`,
      );
    }
  } finally {
    await server.close();
  }
}
