// SPDX-License-Identifier: Apache-2.0
/**
 * End to end, the steady state: a controller started over DataVolumes that already Succeeded
 * reconciles each of them and writes nothing. Writes are counted by the sandbox's audit hook;
 * the wait is for the reconciles themselves (counted as they finish), never for time.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControllerEnv as ControllerEnvVars } from '../../common/contract.js';
import { createLogger } from '../../common/logger.js';
import { parseControllerSettings } from '../../controller/config.js';
import { Controller } from '../../controller/controller.js';
import { KubeClient } from '../../controller/kube.js';
import { ControllerMetrics } from '../../controller/metrics/registry.js';
import { ServiceAccounts } from '../sandbox/components.js';
import { FAST_RESTART_BACKOFF, startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubeConfigFor, kubectl, waitForDeletion } from '../sandbox/testing.js';
import { CDI_NAMESPACE } from '../sandbox/upload-wiring.js';
import { blankDvManifest, waitForPhase } from './controller-harness.js';
import { CoreV1Api } from '@kubernetes/client-node';

const NAMESPACE = 'steady';
const NAMES = ['held-0', 'held-1', 'held-2'];
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** Reconcile metrics that also tell when a queue has finished `n` reconciles. */
class CountingMetrics extends ControllerMetrics {
  private readonly finished = new Map<string, number>();
  private waiters: { queue: string; n: number; resolve: () => void }[] = [];

  override async observe<T>(controller: string, run: () => Promise<T>): Promise<T> {
    try {
      return await super.observe(controller, run);
    } finally {
      this.finished.set(controller, (this.finished.get(controller) ?? 0) + 1);
      this.waiters = this.waiters.filter((w) => {
        if ((this.finished.get(w.queue) ?? 0) < w.n) return true;
        w.resolve();
        return false;
      });
    }
  }

  /** Resolves once `queue` finished at least `n` reconciles. */
  reconciled(queue: string, n: number): Promise<void> {
    if ((this.finished.get(queue) ?? 0) >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ queue, n, resolve }));
  }
}

let sandbox: Sandbox;
let controllerKc: KubeConfig;
/** The controller's writes in {@link NAMESPACE}, as `verb resource[/sub] name`. */
const writes: string[] = [];

function startController(metrics?: ControllerMetrics): Promise<Controller> {
  const controller = new Controller({
    client: new KubeClient(controllerKc),
    settings: parseControllerSettings({ [ControllerEnvVars.PodNamespace]: CDI_NAMESPACE }, 'e2e'),
    log: createLogger({ component: 'controller', level: 'error' }),
    ...(metrics === undefined ? {} : { metrics }),
  });
  return controller.start().then(() => controller);
}

beforeAll(async () => {
  sandbox = await startSandbox({
    restartBackoff: FAST_RESTART_BACKOFF,
    audit: (e) => {
      if (!e.user.startsWith(`system:serviceaccount:${CDI_NAMESPACE}:`)) return;
      if (!WRITE_VERBS.has(e.verb) || !('resource' in e) || e.namespace !== NAMESPACE) return;
      const sub = e.subresource === undefined ? '' : `/${e.subresource}`;
      writes.push(`${e.verb} ${e.resource}${sub} ${e.name ?? ''}`);
    },
  });
  controllerKc = new KubeConfig();
  controllerKc.loadFromFile(
    await sandbox.serviceAccountKubeconfig(CDI_NAMESPACE, ServiceAccounts.Controller),
  );
});

afterAll(async () => {
  await sandbox?.stop();
});

describe('steady state', () => {
  it('a controller started over Succeeded DataVolumes writes nothing for them', async () => {
    const kc = kubeConfigFor(sandbox);
    const env = { kc, core: kc.makeApiClient(CoreV1Api) };
    await env.core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    const first = await startController();
    const manifest = NAMES.map((name) => blankDvManifest(name, '16Mi', NAMESPACE)).join('---\n');
    const applied = await kubectl(sandbox, ['apply', '-f', '-'], { input: manifest });
    expect(applied.stderr).toBe('');
    for (const name of NAMES) {
      await waitForPhase(env, NAMESPACE, name, 'Succeeded');
      // The finished import's pod is deleted: the last write the first controller makes.
      await waitForDeletion(kc, `/api/v1/namespaces/${NAMESPACE}/pods`, {
        apiVersion: 'v1',
        kind: 'Pod',
        name: `importer-${name}`,
        namespace: NAMESPACE,
      });
    }
    expect(writes.length).toBeGreaterThan(0); // the audit sees this controller's writes
    await first.stop();

    writes.length = 0;
    const metrics = new CountingMetrics();
    const second = await startController(metrics);
    try {
      // Every DataVolume and claim reconciled once: a write they made is recorded by then.
      await metrics.reconciled('datavolume', NAMES.length);
      await metrics.reconciled('claim', NAMES.length);
      expect(writes).toEqual([]);
    } finally {
      await second.stop();
    }
  });
});
