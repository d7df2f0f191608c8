// SPDX-License-Identifier: Apache-2.0
/**
 * The controller's Prometheus registry: reconcile counts and latencies in controller-runtime's
 * shape (`controller_runtime_reconcile_*{controller}`), CDI's operational gauges computed at
 * scrape time from the caches, and Node's process metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import {
  STORAGE_PROFILE_LABELS,
  computeOperationalMetrics,
  type OperationalInput,
} from './operational.js';

/** Where the gauges read their inputs at scrape time. */
export interface MetricsSource {
  /** The cached objects, or undefined before the caches synced (gauges then read 0). */
  operationalInput(): OperationalInput | undefined;
  /** True when CDI is ready to serve requests (`kubevirt_cdi_cr_ready`). */
  crReady(): boolean;
}

/** Outcome label of `controller_runtime_reconcile_total`, as controller-runtime names them. */
export type ReconcileResult = 'success' | 'error' | 'requeue_after';

/** Registry and instruments of one controller process. */
export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly total: Counter<'controller' | 'result'>;
  private readonly errors: Counter<'controller'>;
  private readonly time: Histogram<'controller'>;
  private source: MetricsSource | undefined;

  constructor() {
    const registers = [this.registry];
    this.total = new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.errors = new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    });
    this.time = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      // controller-runtime's buckets, trimmed to what a reconcile can take.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const input = (): OperationalInput | undefined => this.source?.operationalInput();
    const simple = (name: string, help: string, pick: (i: OperationalInput) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const i = input();
          if (i !== undefined) this.set(pick(i));
        },
      });
    };
    const crReady = (): boolean => this.source?.crReady() === true;
    new Gauge({
      name: 'kubevirt_cdi_cr_ready',
      help: 'CDI install ready',
      registers,
      collect() {
        this.set(crReady() ? 1 : 0);
      },
    });
    simple(
      'kubevirt_cdi_datavolume_pending',
      'Number of DataVolumes pending for default storage class to be configured',
      (i) => computeOperationalMetrics(i).dataVolumePending,
    );
    simple(
      'kubevirt_cdi_import_pods_high_restart',
      'The number of CDI import pods with high restart count',
      (i) => computeOperationalMetrics(i).importPodsHighRestart,
    );
    simple(
      'kubevirt_cdi_upload_pods_high_restart',
      'The number of CDI upload server pods with high restart count',
      (i) => computeOperationalMetrics(i).uploadPodsHighRestart,
    );
    simple(
      'kubevirt_cdi_clone_pods_high_restart',
      'The number of CDI clone pods with high restart count',
      (i) => computeOperationalMetrics(i).clonePodsHighRestart,
    );
    new Gauge({
      name: 'kubevirt_cdi_storageprofile_info',
      help:
        '`StorageProfiles` info labels: `storageclass`, `provisioner`, `complete` indicates if all ' +
        'storage profiles recommended PVC settings are complete, `default` indicates if it is the ' +
        "Kubernetes default storage class, `virtdefault` indicates if it's the default virtualization " +
        'storage class, `rwx` indicates if the storage class supports `ReadWriteMany`, `smartclone` ' +
        'indicates if it supports snapshot or CSI based clone, `degraded` indicates it is not optimal ' +
        'for virtualization',
      labelNames: STORAGE_PROFILE_LABELS,
      registers,
      collect() {
        const i = input();
        if (i === undefined) return;
        // Labels change with the profile: rebuild the series so stale combinations vanish.
        this.reset();
        for (const labels of computeOperationalMetrics(i).storageProfiles) this.set(labels, 1);
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  /** Connects the gauges to the running controller. */
  attach(source: MetricsSource): void {
    this.source = source;
  }

  /** Runs one reconcile of `controller`, counting it and timing it; rethrows its error. */
  async observe<T>(controller: string, run: () => Promise<T>): Promise<T> {
    const end = this.time.startTimer({ controller });
    try {
      const out = await run();
      const result: ReconcileResult = typeof out === 'number' ? 'requeue_after' : 'success';
      this.total.inc({ controller, result });
      return out;
    } catch (err) {
      this.total.inc({ controller, result: 'error' });
      this.errors.inc({ controller });
      throw err;
    } finally {
      end();
    }
  }
}
