// SPDX-License-Identifier: Apache-2.0
/**
 * The running controller: informers on DataVolumes, claims, pods, storage classes and the
 * CDIConfig; three work queues (DataVolumes, import claims, the config singleton) fed by their
 * events; and a periodic resync that re-queues everything, so a missed event or a restart at any
 * point only delays convergence.
 */
import {
  CoreV1Api,
  type KubernetesListObject,
  type KubernetesObject,
  type V1PersistentVolumeClaim,
  type V1Pod,
  type V1StorageClass,
} from '@kubernetes/client-node';
import { Annotations, ForeignAnnotations, Labels, uploadServiceName } from '../common/contract.js';
import {
  CDI_CONFIG_NAME,
  CDI_GROUP,
  CDI_VERSION,
  CdiResources,
  type CdiConfig,
  type ClaimPropertySet,
  type DataSource,
  type DataVolume,
  type StorageProfile,
} from '../common/api/datavolume.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import {
  computeConfigStatus,
  effectiveConfig,
  isWaitForFirstConsumer,
  type ControllerSettings,
  type EffectiveConfig,
  type CloneProfile,
  type StorageClassInfo,
} from './config.js';
import { EventRecorder } from './events.js';
import { execute, type ExecutorContext } from './executor.js';
import { ResilientInformer } from './informer.js';
import type { KubeClient } from './kube.js';
import { IdleMemoryRelease, lastResortCollector } from './memory-release.js';
import { WorkQueue } from './queue.js';
import { importerPodName, uploadPodName } from './builders/naming.js';
import { CdiPki, PkiNames } from './pki/cdi-pki.js';
import {
  reconcileDataVolume,
  splitKey,
  type DataVolumeReconcileContext,
} from './datavolume/reconcile.js';
import { decideImport, isImportClaim, isImportComplete } from './pvc/import-reconcile.js';
import { cloneRequestOf } from './builders/claim.js';
import { dataSourceClaim, dataSourceRefOf } from './datavolume/clone-resolve.js';
import {
  decideDataSource,
  referencedDataSource,
  resolveDataSource,
  resolvedClaim,
  resolvedSnapshot,
} from './datasource/decide.js';
import { DATA_IMPORT_CRONS, type DataImportCron } from '../common/api/dataimportcron.js';
import { cronLabelOf } from './dataimportcron/decide.js';
import { outdatedSamples, type OutdatedSample } from './dataimportcron/metrics.js';
import { reconcileCron, type CronReconcileContext } from './dataimportcron/reconcile.js';
import { isPopulated } from './pvc/clone-source.js';
import { decideUpload, isUploadClaim } from './pvc/upload-reconcile.js';
import { decideCloneSource, networkCloneSource } from './pvc/clone-source-reconcile.js';
import { CLONE_TARGET_ANNOTATION, cloneSourcePodName } from './builders/clone-source-pod.js';
import { scrapeTransfer } from './progress-scraper.js';
import { decideStorageProfile } from './storageprofile/decide.js';
import type { ControllerMetrics, MetricsSource } from './metrics/registry.js';
import type { OperationalInput } from './metrics/operational.js';
import { activeCdi, decideCdi } from './cdi/decide.js';
import { applyCdiDecision } from './cdi/apply.js';
import { CDI_PLURAL, type Cdi } from './cdi/types.js';

/** Options of {@link Controller}. */
export interface ControllerOptions {
  readonly client: KubeClient;
  readonly settings: ControllerSettings;
  readonly log: Logger;
  /** Workers per queue (default 3). */
  readonly workers?: number;
  /** Full resync period (default 5 min). */
  readonly resyncMs?: number;
  /** Counts and times reconciles and reads the caches at scrape time. */
  readonly metrics?: ControllerMetrics;
}

const CONFIG_KEY = CDI_CONFIG_NAME;
/** How often a DataSource re-reads a VolumeSnapshot that is not ready (they are not watched). */
const SNAPSHOT_POLL_MS = 10_000;
/** How soon a failed PKI bootstrap is tried again. */
const PKI_RETRY_MS = 10_000;
/** Label selector of the pods the controller creates. */
const POD_SELECTOR = `${Labels.App}=${Labels.AppValue}`;

function keyOf(obj: { metadata?: { namespace?: string; name?: string } }): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

/** The DataVolume and import controller. */
export class Controller implements MetricsSource {
  private readonly dvQueue = new WorkQueue();
  private readonly pvcQueue = new WorkQueue();
  private readonly configQueue = new WorkQueue();
  private readonly dsQueue = new WorkQueue();
  private readonly cronQueue = new WorkQueue();
  /** StorageProfiles, keyed by storage class name. */
  private readonly profileQueue = new WorkQueue();
  /** CDI resources, keyed by name. */
  private readonly cdiQueue = new WorkQueue();
  // CDI objects are plain JSON whose metadata types differ from client-node's V1ObjectMeta
  // (timestamps as text); they are cached as KubernetesObject and read through the views below.
  private readonly dataVolumes: ResilientInformer<KubernetesObject>;
  private readonly pvcs: ResilientInformer<V1PersistentVolumeClaim>;
  private readonly pods: ResilientInformer<V1Pod>;
  private readonly storageClasses: ResilientInformer<V1StorageClass>;
  private readonly cdiConfigs: ResilientInformer<KubernetesObject>;
  private readonly dataSources: ResilientInformer<KubernetesObject>;
  private readonly storageProfiles: ResilientInformer<KubernetesObject>;
  private readonly crons: ResilientInformer<KubernetesObject>;
  private readonly cronView = {
    get: (name: string, namespace?: string): DataImportCron | undefined =>
      this.crons.get(name, namespace) as DataImportCron | undefined,
    list: (): readonly DataImportCron[] => this.crons.list() as readonly DataImportCron[],
  };
  private readonly cdis: ResilientInformer<KubernetesObject>;
  /** Ingresses of CDI's namespace: one may expose the upload proxy (CDIConfig's URL). */
  private readonly ingresses: ResilientInformer<KubernetesObject>;
  private readonly dsView = {
    get: (name: string, namespace?: string): DataSource | undefined =>
      this.dataSources.get(name, namespace) as DataSource | undefined,
  };
  private readonly dvView = {
    get: (name: string, namespace?: string): DataVolume | undefined =>
      this.dataVolumes.get(name, namespace) as DataVolume | undefined,
    list: (): readonly DataVolume[] => this.dataVolumes.list() as readonly DataVolume[],
  };
  private readonly recorder: EventRecorder;
  private readonly pki: CdiPki;
  private readonly log: Logger;
  private resyncTimer: NodeJS.Timeout | undefined;
  private pkiRetryTimer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private synced = false;
  /** The certConfig (JSON) the PKI was last ensured with. */
  private pkiCertConfig: string | undefined;
  private pkiRun: Promise<void> = Promise.resolve();
  private readonly memoryRelease = new IdleMemoryRelease({
    busy: () => this.queues().some((q) => !q.idle),
    completed: () => this.queues().reduce((sum, q) => sum + q.completed, 0),
    collect: lastResortCollector(),
    onRelease: (ms) =>
      this.log.info('released idle memory', {
        ms: Math.round(ms),
        rssMiB: Math.round(process.memoryUsage.rss() / 1048576),
      }),
  });

  constructor(private readonly options: ControllerOptions) {
    const { client, log } = options;
    this.log = log;
    this.recorder = new EventRecorder((e) => client.createEvent(e), log);
    this.pki = new CdiPki({
      client,
      namespace: options.settings.namespace,
      log: log.child({ component: 'pki' }),
    });
    const kubeConfig = client.kubeConfig;
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const custom = client.custom;
    this.dataVolumes = new ResilientInformer({
      kubeConfig,
      log,
      path: `/apis/${CDI_GROUP}/${CDI_VERSION}/${CdiResources.DataVolumes}`,
      list: async () =>
        (await custom.listClusterCustomObject({
          group: CDI_GROUP,
          version: CDI_VERSION,
          plural: CdiResources.DataVolumes,
        })) as KubernetesListObject<KubernetesObject>,
      onChange: (dv, verb) => this.onDataVolume(dv as DataVolume, verb),
    });
    this.pvcs = new ResilientInformer({
      kubeConfig,
      log,
      path: '/api/v1/persistentvolumeclaims',
      list: () => core.listPersistentVolumeClaimForAllNamespaces(),
      onChange: (pvc) => this.onPvc(pvc),
    });
    this.pods = new ResilientInformer({
      kubeConfig,
      log,
      path: '/api/v1/pods',
      // Only CDI's own pods: a cluster's other pods are none of our business (and many).
      labelSelector: POD_SELECTOR,
      list: () => core.listPodForAllNamespaces({ labelSelector: POD_SELECTOR }),
      onChange: (pod) => this.onPod(pod),
    });
    this.storageClasses = new ResilientInformer({
      kubeConfig,
      log,
      path: '/apis/storage.k8s.io/v1/storageclasses',
      list: () => client.storage.listStorageClass(),
      onChange: (sc) => {
        this.configQueue.add(CONFIG_KEY);
        this.profileQueue.add(sc.metadata?.name ?? '');
        this.requeueClaimless();
      },
    });
    this.storageProfiles = new ResilientInformer({
      kubeConfig,
      log,
      path: `/apis/${CDI_GROUP}/${CDI_VERSION}/${CdiResources.StorageProfiles}`,
      list: async () =>
        (await custom.listClusterCustomObject({
          group: CDI_GROUP,
          version: CDI_VERSION,
          plural: CdiResources.StorageProfiles,
        })) as KubernetesListObject<KubernetesObject>,
      onChange: (p) => {
        this.profileQueue.add(p.metadata?.name ?? '');
        this.requeueClaimless();
      },
    });
    this.cdiConfigs = new ResilientInformer({
      kubeConfig,
      log,
      path: `/apis/${CDI_GROUP}/${CDI_VERSION}/${CdiResources.CdiConfigs}`,
      list: async () =>
        (await custom.listClusterCustomObject({
          group: CDI_GROUP,
          version: CDI_VERSION,
          plural: CdiResources.CdiConfigs,
        })) as KubernetesListObject<KubernetesObject>,
      onChange: () => {
        this.configQueue.add(CONFIG_KEY);
        // The CDI resource is the authority: an edit of the CDIConfig spec is put back.
        this.requeueCdis();
      },
    });
    this.cdis = new ResilientInformer({
      kubeConfig,
      log,
      path: `/apis/${CDI_GROUP}/${CDI_VERSION}/${CDI_PLURAL}`,
      list: async () =>
        (await custom.listClusterCustomObject({
          group: CDI_GROUP,
          version: CDI_VERSION,
          plural: CDI_PLURAL,
        })) as KubernetesListObject<KubernetesObject>,
      onChange: (c) => {
        this.cdiQueue.add(c.metadata?.name ?? '');
        // New certificate lifetimes are applied at once, not at the next resync.
        if (this.pkiCertConfig !== undefined && this.certConfigJson() !== this.pkiCertConfig)
          void this.ensurePki();
      },
    });
    const namespace = options.settings.namespace;
    this.ingresses = new ResilientInformer({
      kubeConfig,
      log,
      path: `/apis/networking.k8s.io/v1/namespaces/${namespace}/ingresses`,
      list: async () =>
        (await custom.listNamespacedCustomObject({
          group: 'networking.k8s.io',
          version: 'v1',
          namespace,
          plural: 'ingresses',
        })) as KubernetesListObject<KubernetesObject>,
      onChange: () => this.configQueue.add(CONFIG_KEY),
    });
    this.dataSources = new ResilientInformer({
      kubeConfig,
      log,
      path: `/apis/${CDI_GROUP}/${CDI_VERSION}/${CdiResources.DataSources}`,
      list: async () =>
        (await custom.listClusterCustomObject({
          group: CDI_GROUP,
          version: CDI_VERSION,
          plural: CdiResources.DataSources,
        })) as KubernetesListObject<KubernetesObject>,
      onChange: (ds) => this.onDataSource(ds as DataSource),
    });
    this.crons = new ResilientInformer({
      kubeConfig,
      log,
      path: `/apis/${CDI_GROUP}/${CDI_VERSION}/${DATA_IMPORT_CRONS}`,
      list: async () =>
        (await custom.listClusterCustomObject({
          group: CDI_GROUP,
          version: CDI_VERSION,
          plural: DATA_IMPORT_CRONS,
        })) as KubernetesListObject<KubernetesObject>,
      onChange: (c) => this.cronQueue.add(keyOf(c)),
    });
  }

  /** `kubevirt_cdi_dataimportcron_outdated` of every cached DataImportCron. */
  dataImportCronOutdated(): OutdatedSample[] {
    const hasDefault = this.storageClassInfos().some((sc) => sc.isDefault);
    return outdatedSamples(this.cronView.list(), hasDefault);
  }

  /** The effective configuration from the caches. */
  config(): EffectiveConfig {
    const cdiConfig = this.cdiConfigs.get(CDI_CONFIG_NAME) as CdiConfig | undefined;
    const cdiSpec = activeCdi(this.cdis.list() as readonly Cdi[])?.spec;
    const workload = cdiSpec?.workload;
    const override = cdiSpec?.cloneStrategyOverride;
    const config = {
      ...effectiveConfig(cdiConfig?.spec, this.storageClassInfos(), this.claimPropertySets()),
      cloneProfiles: this.cloneProfiles(),
      ...(override === undefined ? {} : { cloneStrategyOverride: override }),
    };
    return workload === undefined ? config : { ...config, workload };
  }

  /** The clone settings of every cached StorageProfile, by class name. */
  private cloneProfiles(): Record<string, CloneProfile> {
    const out: Record<string, CloneProfile> = {};
    for (const p of this.storageProfiles.list() as readonly StorageProfile[]) {
      const { cloneStrategy, snapshotClass, dataImportCronSourceFormat } = p.status ?? {};
      out[p.metadata.name ?? ''] = {
        ...(cloneStrategy === undefined ? {} : { cloneStrategy }),
        ...(snapshotClass === undefined ? {} : { snapshotClass }),
        ...(dataImportCronSourceFormat === undefined ? {} : { dataImportCronSourceFormat }),
      };
    }
    return out;
  }

  /** `status.claimPropertySets` of every cached StorageProfile, by class name. */
  private claimPropertySets(): Record<string, ClaimPropertySet[]> {
    const out: Record<string, ClaimPropertySet[]> = {};
    for (const p of this.storageProfiles.list() as readonly StorageProfile[]) {
      const sets = p.status?.claimPropertySets;
      if (p.metadata.name !== undefined && sets !== undefined) out[p.metadata.name] = sets;
    }
    return out;
  }

  private storageClassInfos(): StorageClassInfo[] {
    return this.storageClasses.list().map((sc) => ({
      name: sc.metadata?.name ?? '',
      isDefault: sc.metadata?.annotations?.[ForeignAnnotations.DefaultStorageClass] === 'true',
      isDefaultVirt:
        sc.metadata?.annotations?.[ForeignAnnotations.DefaultVirtStorageClass] === 'true',
      volumeBindingMode: sc.volumeBindingMode ?? 'Immediate',
      provisioner: sc.provisioner,
      allowVolumeExpansion: sc.allowVolumeExpansion === true,
    }));
  }

  /** The cached objects CDI's gauges are computed from; undefined before the caches synced. */
  operationalInput(): OperationalInput | undefined {
    if (!this.synced) return undefined;
    return {
      dataVolumes: this.dvView.list(),
      pods: this.pods.list(),
      storageClasses: this.storageClasses.list().map((sc) => ({
        name: sc.metadata?.name ?? '',
        annotations: sc.metadata?.annotations ?? {},
      })),
      storageProfiles: this.storageProfiles.list() as readonly StorageProfile[],
    };
  }

  /** Why the controller cannot do its work yet, or undefined when it can. */
  notReady(): string | undefined {
    if (!this.synced) return 'caches not synced';
    if (!this.pki.ready) return 'upload certificates not ensured';
    return undefined;
  }

  /** CDI is ready: caches synced and the PKI in place. */
  crReady(): boolean {
    return this.notReady() === undefined;
  }

  /** Starts the informers (waiting for their first lists) and the workers. */
  async start(): Promise<void> {
    const { client } = this.options;
    try {
      await client.ensureCdiConfig();
    } catch (err) {
      this.log.warn('could not ensure the CDIConfig exists', { error: errorMessage(err) });
    }
    // Uploads wait for this (their Secrets are signed by it); imports do not, so a failure is
    // logged and retried at each resync rather than stopping the controller.
    // The CDI resource's certConfig sets the certificates' lifetimes: read it before issuing.
    await this.cdis.start();
    await this.ensurePki();
    await Promise.all([
      this.storageClasses.start(),
      this.cdiConfigs.start(),
      this.pods.start(),
      this.pvcs.start(),
      this.dataSources.start(),
      this.storageProfiles.start(),
      this.crons.start(),
      this.ingresses.start(),
    ]);
    await this.dataVolumes.start();
    this.synced = true;
    this.options.metrics?.attach(this);
    this.log.info('caches synced', {
      dataVolumes: this.dataVolumes.list().length,
      pvcs: this.pvcs.list().length,
      pods: this.pods.list().length,
    });
    const workers = this.options.workers ?? 3;
    const metrics = this.options.metrics;
    const observed =
      <T>(name: string, run: (key: string) => Promise<T>) =>
      (key: string): Promise<T> =>
        metrics === undefined ? run(key) : metrics.observe(name, () => run(key));
    const ctx = this.reconcileContext();
    const onError = (queue: string) => (key: string, err: unknown) =>
      this.log.warn('reconcile failed, will retry', { queue, key, error: errorMessage(err) });
    this.configQueue.add(CONFIG_KEY);
    this.resync();
    this.running = Promise.all([
      this.dvQueue.run(
        async (key) =>
          this.requeue(
            this.dvQueue,
            key,
            await observed('datavolume', (k) => reconcileDataVolume(ctx, k))(key),
          ),
        workers,
        onError('datavolume'),
      ),
      this.pvcQueue.run(
        async (key) =>
          this.requeue(
            this.pvcQueue,
            key,
            await observed('claim', (k) => this.reconcileClaim(ctx, k))(key),
          ),
        workers,
        onError('claim'),
      ),
      this.configQueue.run(
        observed('config', () => this.reconcileConfig()),
        1,
        onError('config'),
      ),
      this.dsQueue.run(
        observed('datasource', async (key) =>
          this.requeue(this.dsQueue, key, await this.reconcileDataSource(ctx, key)),
        ),
        1,
        onError('datasource'),
      ),
      this.cronQueue.run(
        observed('dataimportcron', async (key) => {
          const { namespace, name } = splitKey(key);
          this.requeue(
            this.cronQueue,
            key,
            await reconcileCron(this.cronContext(ctx), namespace, name),
          );
        }),
        workers,
        onError('dataimportcron'),
      ),
      this.profileQueue.run(
        observed('storageprofile', (name) => this.reconcileStorageProfile(ctx, name)),
        1,
        onError('storageprofile'),
      ),
      this.cdiQueue.run(
        observed('cdi', (name) => this.reconcileCdi(name)),
        1,
        onError('cdi'),
      ),
    ]);
    const resyncMs = this.options.resyncMs ?? 300_000;
    this.resyncTimer = setInterval(() => {
      this.resync();
      void this.ensurePki();
    }, resyncMs);
    this.resyncTimer.unref();
    this.memoryRelease.start();
  }

  /** Every work queue, for the idle check. */
  private queues(): readonly WorkQueue[] {
    return [
      this.dvQueue,
      this.pvcQueue,
      this.configQueue,
      this.dsQueue,
      this.cronQueue,
      this.profileQueue,
      this.cdiQueue,
    ];
  }

  /** Stops the workers and informers; in-flight reconciles finish first. */
  async stop(): Promise<void> {
    if (this.resyncTimer !== undefined) clearInterval(this.resyncTimer);
    this.memoryRelease.stop();
    clearTimeout(this.pkiRetryTimer);
    this.dvQueue.shutDown();
    this.pvcQueue.shutDown();
    this.configQueue.shutDown();
    this.dsQueue.shutDown();
    this.cronQueue.shutDown();
    this.profileQueue.shutDown();
    this.cdiQueue.shutDown();
    await this.running;
    await Promise.all([
      this.dataVolumes.stop(),
      this.pvcs.stop(),
      this.pods.stop(),
      this.storageClasses.stop(),
      this.cdiConfigs.stop(),
      this.dataSources.stop(),
      this.storageProfiles.stop(),
      this.crons.stop(),
      this.cdis.stop(),
      this.ingresses.stop(),
    ]);
  }

  private requeue(queue: WorkQueue, key: string, afterMs: number | undefined): void {
    if (afterMs !== undefined) queue.addAfter(key, afterMs);
  }

  private resync(): void {
    for (const dv of this.dvView.list()) this.dvQueue.add(keyOf(dv));
    for (const pvc of this.pvcs.list()) if (this.servesClaim(pvc)) this.pvcQueue.add(keyOf(pvc));
    for (const ds of this.dataSources.list()) this.dsQueue.add(keyOf(ds));
    for (const c of this.crons.list()) this.cronQueue.add(keyOf(c));
    for (const o of [...this.storageClasses.list(), ...this.storageProfiles.list()])
      this.profileQueue.add(o.metadata?.name ?? '');
    this.requeueCdis();
    this.configQueue.add(CONFIG_KEY);
  }

  private requeueCdis(): void {
    for (const c of this.cdis.list()) this.cdiQueue.add(c.metadata?.name ?? '');
  }

  /** The active CDI resource's `spec.certConfig`, as JSON (`{}` when none). */
  private certConfigJson(): string {
    return JSON.stringify(activeCdi(this.cdis.list() as readonly Cdi[])?.spec?.certConfig ?? {});
  }

  /** Runs {@link ensurePkiOnce} after any run in progress: two runs would race on the Secrets. */
  private ensurePki(): Promise<void> {
    this.pkiRun = this.pkiRun.then(() => this.ensurePkiOnce());
    return this.pkiRun;
  }

  private async ensurePkiOnce(): Promise<void> {
    clearTimeout(this.pkiRetryTimer);
    try {
      const certConfig = activeCdi(this.cdis.list() as readonly Cdi[])?.spec?.certConfig;
      this.pkiCertConfig = this.certConfigJson();
      await this.pki.ensure(certConfig);
      // Readiness may have changed: the CDI resource's conditions follow it.
      this.requeueCdis();
    } catch (err) {
      // Uploads wait for it: retry soon rather than at the next resync.
      this.log.warn('could not ensure the upload certificates, retrying in 10 s', {
        error: errorMessage(err),
      });
      this.pkiRetryTimer = setTimeout(() => void this.ensurePki(), PKI_RETRY_MS);
      this.pkiRetryTimer.unref();
    }
  }

  /** Import and upload claims, and claims that still have an upload pod (annotation removed). */
  private servesClaim(pvc: V1PersistentVolumeClaim): boolean {
    return (
      isImportClaim(pvc) ||
      isUploadClaim(pvc) ||
      this.pods.get(uploadPodName(pvc.metadata?.name ?? ''), pvc.metadata?.namespace) !== undefined
    );
  }

  private reconcileContext(): DataVolumeReconcileContext {
    return {
      client: this.options.client,
      recorder: this.recorder,
      log: this.log,
      config: () => this.config(),
      pki: this.pki,
      caches: {
        dataVolumes: this.dvView,
        pvcs: this.pvcs,
        pods: this.pods,
        dataSources: this.dsView,
      },
      scrape: (podIp, ownerUid) => scrapeTransfer({ podIp, ownerUid }),
    };
  }

  private async reconcileClaim(ctx: ExecutorContext, key: string): Promise<number | undefined> {
    const { namespace, name } = splitKey(key);
    const pvc = this.pvcs.get(name, namespace);
    if (pvc === undefined) {
      await this.removeOrphanCloneSources(ctx, key);
      return undefined;
    }
    const config = ctx.config();
    const waitForFirstConsumer = isWaitForFirstConsumer(config, pvc.spec?.storageClassName);
    const settings = this.options.settings;
    const uploadPod = this.pods.get(uploadPodName(name), namespace);
    if (isUploadClaim(pvc) || uploadPod !== undefined) {
      await execute(
        ctx,
        decideUpload({ pvc, pod: uploadPod, config, settings, waitForFirstConsumer }),
      );
    }
    const networkClone = await this.reconcileCloneSource(ctx, pvc);
    if (!isImportClaim(pvc)) return networkClone;
    const podName = pvc.metadata?.annotations?.[Annotations.ImportPodName] ?? importerPodName(name);
    const cloneRef = cloneRequestOf(pvc);
    const pod = this.pods.get(podName, namespace);
    // Only a clone about to start its pod asks the API who else uses the source.
    const users =
      cloneRef !== undefined && pod === undefined && !isImportComplete(pvc)
        ? await ctx.client.listPodsUsingClaim(cloneRef.namespace, cloneRef.name)
        : [];
    const actions = decideImport({
      pvc,
      pod,
      cloneSourceUsers: users.map(
        (p) => `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`,
      ),
      config,
      settings,
      waitForFirstConsumer,
      ...(cloneRef === undefined
        ? {}
        : { cloneSource: this.pvcs.get(cloneRef.name, cloneRef.namespace) }),
    });
    return execute(ctx, actions);
  }

  /** Source pods (and their Secrets) of a network clone whose target claim is gone. */
  private async removeOrphanCloneSources(ctx: ExecutorContext, key: string): Promise<void> {
    const orphans = this.pods
      .list()
      .filter((p) => p.metadata?.annotations?.[CLONE_TARGET_ANNOTATION] === key);
    await execute(
      ctx,
      orphans.flatMap((p) => {
        const namespace = p.metadata?.namespace ?? '';
        const name = p.metadata?.name ?? '';
        return [
          { kind: 'deletePod', namespace, name } as const,
          { kind: 'deleteSecret', namespace, name } as const,
        ];
      }),
    );
  }

  /** The source pod of a network clone target (clone-source-reconcile.ts); else nothing. */
  private async reconcileCloneSource(
    ctx: ExecutorContext,
    pvc: V1PersistentVolumeClaim,
  ): Promise<number | undefined> {
    const ref = networkCloneSource(pvc);
    if (ref === undefined) return undefined;
    const podName = cloneSourcePodName(pvc.metadata?.uid ?? '');
    const sourcePod = this.pods.get(podName, ref.namespace);
    const ready = pvc.metadata?.annotations?.[Annotations.PodReady] === 'true';
    // Only read the API when a pod is about to be made.
    const wantsPod = sourcePod === undefined && ready;
    const using = wantsPod ? await ctx.client.listPodsUsingClaim(ref.namespace, ref.name) : [];
    const serviceIp = wantsPod
      ? await ctx.client.getServiceClusterIp(
          pvc.metadata?.namespace ?? '',
          uploadServiceName(pvc.metadata?.name ?? ''),
        )
      : undefined;
    return execute(
      ctx,
      decideCloneSource({
        target: pvc,
        source: this.pvcs.get(ref.name, ref.namespace),
        sourcePod,
        podsUsingSource: using
          .filter((p) => p.metadata?.name !== podName)
          .map((p) => `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`),
        serviceIp,
        settings: this.options.settings,
      }),
    );
  }

  private async reconcileDataSource(
    ctx: ExecutorContext,
    key: string,
  ): Promise<number | undefined> {
    const { namespace, name } = splitKey(key);
    const ds = this.dsView.get(name, namespace);
    if (ds === undefined) return undefined;
    const ref = referencedDataSource(ds);
    const referenced = ref === undefined ? undefined : this.dsView.get(ref.name, ref.namespace);
    const resolution = resolveDataSource(ds, referenced);
    const claim = resolvedClaim(resolution);
    const pvc = claim === undefined ? undefined : this.pvcs.get(claim.name, claim.namespace);
    // Snapshots are read when needed rather than watched: the snapshot API may not be served.
    const snap = resolvedSnapshot(resolution);
    const snapshot =
      snap === undefined
        ? undefined
        : await this.options.client.getVolumeSnapshot(snap.namespace, snap.name);
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    await execute(ctx, decideDataSource({ ds, referenced, pvc, snapshot, now }));
    return snap !== undefined && snapshot?.status?.readyToUse !== true
      ? SNAPSHOT_POLL_MS
      : undefined;
  }

  private cronContext(ctx: DataVolumeReconcileContext): CronReconcileContext {
    return {
      ...ctx,
      caches: {
        crons: this.cronView,
        dataVolumes: this.dvView,
        pvcs: { get: (n, ns) => this.pvcs.get(n, ns), list: () => this.pvcs.list() },
        dataSources: {
          get: (n, ns) => this.dsView.get(n, ns),
          list: () => this.dataSources.list() as readonly DataSource[],
        },
      },
    };
  }

  /** Queues the DataImportCron that labelled an object as its own. */
  private onCronOwned(obj: {
    metadata?: { namespace?: string; labels?: Record<string, string> };
  }): void {
    const cron = cronLabelOf(obj);
    if (cron !== '') this.cronQueue.add(`${obj.metadata?.namespace ?? ''}/${cron}`);
  }

  /**
   * DataVolumes without a claim yet: a storage class or profile change may make their claim
   * renderable (CDI `ErrClaimNotValid` waits for a storage class).
   */
  private requeueClaimless(): void {
    for (const dv of this.dvView.list()) {
      if (this.pvcs.get(dv.metadata.name ?? '', dv.metadata.namespace) === undefined)
        this.dvQueue.add(keyOf(dv));
    }
  }

  private async reconcileStorageProfile(ctx: ExecutorContext, name: string): Promise<void> {
    if (name === '') return;
    const sc = this.storageClasses.get(name);
    await execute(
      ctx,
      decideStorageProfile({
        name,
        storageClass: sc === undefined ? undefined : { name, provisioner: sc.provisioner },
        profile: this.storageProfiles.get(name) as StorageProfile | undefined,
      }),
    );
  }

  private async reconcileCdi(name: string): Promise<void> {
    const cdi = this.cdis.get(name) as Cdi | undefined;
    if (cdi === undefined) return;
    const deleting = cdi.metadata.deletionTimestamp !== undefined;
    // Only the active resource configures; another live one is left alone (CDI `GetActiveCDI`).
    if (!deleting && activeCdi(this.cdis.list() as readonly Cdi[]) !== cdi) return;
    const decision = decideCdi({
      cdi,
      config: this.cdiConfigs.get(CDI_CONFIG_NAME) as CdiConfig | undefined,
      dataVolumes: this.dataVolumes.list().length,
      notReady: this.notReady(),
      now: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    });
    await applyCdiDecision(this.options.client, this.recorder, cdi, decision);
  }

  private async reconcileConfig(): Promise<void> {
    const current = this.cdiConfigs.get(CDI_CONFIG_NAME) as CdiConfig | undefined;
    if (current === undefined) return;
    // Routes are listed, not watched: the API exists on OpenShift only (a resync picks them up).
    const status = computeConfigStatus(current.spec, this.storageClassInfos(), {
      ingresses: this.ingresses.list(),
      routes: await this.options.client.listRoutes(this.options.settings.namespace),
      service: PkiNames.UploadProxyService,
    });
    if (JSON.stringify(current.status ?? {}) === JSON.stringify(status)) return;
    await this.options.client.patchCdiConfigStatus(status);
  }

  private onDataVolume(dv: DataVolume, verb: 'add' | 'update' | 'delete'): void {
    this.dvQueue.add(keyOf(dv));
    this.onCronOwned(dv);
    // A CDI resource whose uninstall waits for the last DataVolume to go.
    if (verb !== 'update') {
      for (const c of this.cdis.list())
        if (c.metadata?.deletionTimestamp !== undefined) this.cdiQueue.add(c.metadata.name ?? '');
    }
    if (verb !== 'delete') return;
    // Garbage collection removes the claim (and through it the pod); deleting it here as well
    // stops the import at once even where the collector is slow.
    const pvc = this.pvcs.get(dv.metadata.name ?? '', dv.metadata.namespace);
    const owned = (pvc?.metadata?.ownerReferences ?? []).some((o) => o.uid === dv.metadata.uid);
    if (pvc !== undefined && owned) {
      this.log.info('DataVolume deleted, deleting its PVC', { dv: keyOf(dv) });
      this.options.client
        .deletePvc(dv.metadata.namespace ?? '', dv.metadata.name ?? '')
        .catch((err: unknown) =>
          this.log.warn('deleting the PVC failed', { error: errorMessage(err) }),
        );
    }
  }

  private onPvc(pvc: V1PersistentVolumeClaim): void {
    if (this.servesClaim(pvc)) this.pvcQueue.add(keyOf(pvc));
    this.onCronOwned(pvc);
    this.onCloneSource(pvc);
    for (const o of pvc.metadata?.ownerReferences ?? []) {
      if (o.kind === 'DataVolume') this.dvQueue.add(`${pvc.metadata?.namespace ?? ''}/${o.name}`);
    }
  }

  /**
   * A claim changed: re-queue what clones from it, the DataVolumes waiting for it as their source
   * (directly or through a DataSource) and the clone targets waiting to copy it.
   */
  private onCloneSource(pvc: V1PersistentVolumeClaim): void {
    const namespace = pvc.metadata?.namespace ?? '';
    const name = pvc.metadata?.name ?? '';
    const isIt = (ref: { namespace: string; name: string } | undefined): boolean =>
      ref !== undefined && ref.namespace === namespace && ref.name === name;
    // DataSources follow their claim either way (Ready turns False when it goes).
    for (const ds of this.dataSources.list()) {
      if (isIt(this.claimOfDataSource(ds as DataSource))) this.dsQueue.add(keyOf(ds));
    }
    // Only a claim that holds its content unblocks waiting clones; skipping the others keeps the
    // scans below off the busy path of an import's own updates (the resync covers the rest).
    if (!isPopulated(pvc)) return;
    for (const dv of this.dvView.list()) {
      if (dv.status?.phase === 'Succeeded') continue;
      const src = dv.spec?.source?.pvc;
      const dsRef = dataSourceRefOf(dv);
      const ds = dsRef === undefined ? undefined : this.dsView.get(dsRef.name, dsRef.namespace);
      const direct =
        src !== undefined &&
        isIt({
          namespace:
            src.namespace === undefined || src.namespace === ''
              ? (dv.metadata.namespace ?? '')
              : src.namespace,
          name: src.name ?? '',
        });
      if (direct || (ds !== undefined && isIt(dataSourceClaim(ds)))) this.dvQueue.add(keyOf(dv));
    }
    for (const claim of this.pvcs.list()) {
      if (isIt(cloneRequestOf(claim))) this.pvcQueue.add(keyOf(claim));
    }
  }

  /** The claim a DataSource resolves to, following a reference to another DataSource. */
  private claimOfDataSource(ds: DataSource): { namespace: string; name: string } | undefined {
    const ref = referencedDataSource(ds);
    const referenced = ref === undefined ? undefined : this.dsView.get(ref.name, ref.namespace);
    return resolvedClaim(resolveDataSource(ds, referenced));
  }

  private onDataSource(ds: DataSource): void {
    const namespace = ds.metadata.namespace ?? '';
    const name = ds.metadata.name ?? '';
    this.dsQueue.add(`${namespace}/${name}`);
    this.onCronOwned(ds);
    // DataSources that refer to this one follow it.
    for (const other of this.dataSources.list() as readonly DataSource[]) {
      const ref = referencedDataSource(other);
      if (ref !== undefined && ref.namespace === namespace && ref.name === name)
        this.dsQueue.add(keyOf(other));
    }
    for (const dv of this.dvView.list()) {
      const ref = dataSourceRefOf(dv);
      if (ref !== undefined && ref.namespace === namespace && ref.name === name)
        this.dvQueue.add(keyOf(dv));
    }
  }

  private onPod(pod: V1Pod): void {
    // A network clone's source pod lives in the source namespace: its target is annotated.
    const target = pod.metadata?.annotations?.[CLONE_TARGET_ANNOTATION];
    if (target !== undefined) this.pvcQueue.add(target);
    for (const o of pod.metadata?.ownerReferences ?? []) {
      if (o.kind === 'PersistentVolumeClaim')
        this.pvcQueue.add(`${pod.metadata?.namespace ?? ''}/${o.name}`);
    }
  }
}
