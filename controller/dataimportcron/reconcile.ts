// SPDX-License-Identifier: Apache-2.0
/**
 * The DataImportCron reconcile's thin shell: reads the cron and what it made from the caches,
 * polls the registry when the schedule says so (the only I/O before `decideCron`), applies the
 * actions, and asks to be run again when the next poll is due. A deleted cron with
 * `retentionPolicy: None` takes its DataVolumes, claims and DataSource with it.
 */
import type { V1ConfigMap, V1PersistentVolumeClaim, V1Secret } from '@kubernetes/client-node';
import { Labels } from '../../common/contract.js';
import { errorMessage } from '../../common/errors.js';
import { SourceFormat, type DataImportCron } from '../../common/api/dataimportcron.js';
import { resolveStorageClass, type EffectiveConfig } from '../config.js';
import { readSnapshotClasses } from '../datavolume/reconcile.js';
import { compatibleSnapshotClass } from '../datavolume/clone-strategy.js';
import type { DataSource, DataVolume } from '../../common/api/datavolume.js';
import { execute, type ExecutorContext } from '../executor.js';
import type { CronAction } from './actions.js';
import {
  cronLabelOf,
  decideCron,
  isPollDue,
  nextPollDelayMs,
  registryUrlOf,
  type CronInput,
  type PollResult,
} from './decide.js';
import { pollDigest } from './poll.js';

/** A namespaced cache read. */
export interface CacheView<T> {
  get(name: string, namespace?: string): T | undefined;
  list(): readonly T[];
}

/** What the cron reconcile reads and calls. */
export interface CronReconcileContext extends ExecutorContext {
  readonly caches: {
    readonly crons: CacheView<DataImportCron>;
    readonly dataVolumes: CacheView<DataVolume>;
    readonly pvcs: CacheView<V1PersistentVolumeClaim>;
    readonly dataSources: CacheView<DataSource>;
  };
  /** Resolves the source's digest; the registry poll by default (tests may replace it). */
  readonly poll?: (cron: DataImportCron) => Promise<PollResult>;
}

function inNamespace(obj: { metadata?: { namespace?: string } }, namespace: string): boolean {
  return (obj.metadata?.namespace ?? '') === namespace;
}

/** Reconciles one cron by `namespace/name`; returns the requeue delay, if any. */
export async function reconcileCron(
  ctx: CronReconcileContext,
  namespace: string,
  name: string,
): Promise<number | undefined> {
  const { caches } = ctx;
  const cron = caches.crons.get(name, namespace);
  if (cron === undefined) {
    await cleanup(ctx, namespace, name);
    return undefined;
  }
  const now = new Date();
  const poll = isPollDue(cron, now)
    ? await (ctx.poll ?? ((c) => registryPoll(ctx, c)))(cron)
    : undefined;
  const current = cron.status?.currentImports?.[0]?.DataVolumeName;
  const dsName = cron.spec?.managedDataSource ?? '';
  const dataSource = caches.dataSources.get(dsName, namespace);
  const pvc = current === undefined ? undefined : caches.pvcs.get(current, namespace);
  const actions = decideCron({
    cron,
    now,
    poll,
    dv: current === undefined ? undefined : caches.dataVolumes.get(current, namespace),
    pvc,
    dataSource,
    ...(await snapshotInputs(ctx, cron, pvc)),
    managedByOther: otherManager(caches.crons, dataSource, name),
    importClaims: caches.pvcs
      .list()
      .filter((p) => inNamespace(p, namespace) && cronLabelOf(p) === name),
  });
  const requeue = await executeCron(ctx, actions);
  const next = nextPollDelayMs(cron, now);
  if (requeue === undefined) return next;
  return next === undefined ? requeue : Math.min(requeue, next);
}

/**
 * The source format of the import's StorageProfile and, for `snapshot`, the import's snapshot
 * (read, not watched) and the VolumeSnapshotClass to take it with.
 */
async function snapshotInputs(
  ctx: CronReconcileContext,
  cron: DataImportCron,
  pvc: V1PersistentVolumeClaim | undefined,
): Promise<Partial<Pick<CronInput, 'sourceFormat' | 'snapshot' | 'snapshotClass'>>> {
  const config = ctx.config();
  const className = importClass(config, cron, pvc);
  const profile = className === undefined ? undefined : config.cloneProfiles?.[className];
  const sourceFormat = profile?.dataImportCronSourceFormat;
  if (sourceFormat === undefined) return {};
  if (sourceFormat !== SourceFormat.Snapshot || pvc === undefined) return { sourceFormat };
  const vs = await ctx.client.getVolumeSnapshot(
    pvc.metadata?.namespace ?? '',
    pvc.metadata?.name ?? '',
  );
  if (vs !== undefined)
    return { sourceFormat, snapshot: { ready: vs.status?.readyToUse === true } };
  const snapshotClass = compatibleSnapshotClass(
    await readSnapshotClasses(ctx.client),
    config.storageClasses.find((sc) => sc.name === className)?.provisioner,
    profile?.snapshotClass,
  );
  return { sourceFormat, ...(snapshotClass === undefined ? {} : { snapshotClass }) };
}

/** The storage class of a cron's imports: the import's, else the template's, else the default. */
function importClass(
  config: EffectiveConfig,
  cron: DataImportCron,
  pvc: V1PersistentVolumeClaim | undefined,
): string | undefined {
  const spec = cron.spec?.template?.spec;
  return resolveStorageClass(
    config,
    pvc?.spec?.storageClassName ?? spec?.storage?.storageClassName ?? spec?.pvc?.storageClassName,
  );
}

/** The cron that manages `ds` when it is not `name` (CDI `shouldReconcileCron`). */
function otherManager(
  crons: CacheView<DataImportCron>,
  ds: DataSource | undefined,
  name: string,
): string | undefined {
  if (ds === undefined) return undefined;
  const owner = cronLabelOf(ds);
  if (owner === '' || owner === name) return undefined;
  const other = crons.get(owner, ds.metadata.namespace);
  return other?.spec?.managedDataSource === ds.metadata.name ? owner : undefined;
}

/** Polls the registry with the template's credentials and CA, as the importer would pull. */
async function registryPoll(ctx: CronReconcileContext, cron: DataImportCron): Promise<PollResult> {
  const namespace = cron.metadata.namespace ?? '';
  const registry = cron.spec?.template?.spec?.source?.registry;
  try {
    const secret =
      (registry?.secretRef ?? '') === ''
        ? undefined
        : await ctx.client.getSecret(namespace, registry?.secretRef ?? '');
    const configMap =
      (registry?.certConfigMap ?? '') === ''
        ? undefined
        : await ctx.client.getConfigMap(namespace, registry?.certConfigMap ?? '');
    const digest = await pollDigest({
      url: registryUrlOf(cron) ?? '',
      insecureRegistries: ctx.config().insecureRegistries,
      credentials: credentialsOf(secret),
      caCertificates: certificatesOf(configMap),
      log: ctx.log,
    });
    return { kind: 'digest', digest };
  } catch (err) {
    ctx.log.warn('polling a DataImportCron source failed', {
      cron: `${namespace}/${cron.metadata.name ?? ''}`,
      error: errorMessage(err),
    });
    return { kind: 'failed', message: errorMessage(err) };
  }
}

function credentialsOf(
  secret: V1Secret | undefined,
): { username: string; password: string } | undefined {
  const user = secret?.data?.['accessKeyId'];
  const password = secret?.data?.['secretKey'];
  if (user === undefined || password === undefined) return undefined;
  return {
    username: Buffer.from(user, 'base64').toString('utf8'),
    password: Buffer.from(password, 'base64').toString('utf8'),
  };
}

function certificatesOf(cm: V1ConfigMap | undefined): string[] | undefined {
  const values = Object.values(cm?.data ?? {});
  return values.length === 0 ? undefined : values;
}

/** Deletes what a removed cron with `retentionPolicy: None` labelled for clean-up. */
async function cleanup(ctx: CronReconcileContext, namespace: string, name: string): Promise<void> {
  const doomed = (o: {
    metadata?: { namespace?: string; labels?: Record<string, string> };
  }): boolean =>
    inNamespace(o, namespace) &&
    cronLabelOf(o) === name &&
    o.metadata?.labels?.[Labels.DataImportCronCleanup] === 'true';
  const actions: CronAction[] = [];
  for (const ds of ctx.caches.dataSources.list())
    if (doomed(ds))
      actions.push({ kind: 'deleteDataSource', namespace, name: ds.metadata.name ?? '' });
  const names = new Set<string>();
  for (const o of [...ctx.caches.dataVolumes.list(), ...ctx.caches.pvcs.list()])
    if (doomed(o)) names.add(o.metadata?.name ?? '');
  for (const n of names) actions.push({ kind: 'deleteImport', namespace, name: n });
  await executeCron(ctx, actions);
}

/** Applies cron actions in order; shared ones go through the common executor. */
export async function executeCron(
  ctx: ExecutorContext,
  actions: readonly CronAction[],
): Promise<number | undefined> {
  let requeue: number | undefined;
  for (const a of actions) {
    switch (a.kind) {
      case 'updateCron':
        await ctx.client.patchDataImportCron(a.namespace, a.name, a);
        break;
      case 'createDataVolume':
        if (await ctx.client.createDataVolume(a.dv))
          ctx.log.info('created import DataVolume', {
            dv: `${a.dv.metadata.namespace ?? ''}/${a.dv.metadata.name ?? ''}`,
          });
        break;
      case 'deleteImport':
        ctx.log.info('deleting an old import', { dv: `${a.namespace}/${a.name}` });
        // CDI `deleteDvPvc`: the DataVolume takes its claim; a claim without one goes itself.
        if (!(await ctx.client.deleteDataVolume(a.namespace, a.name)))
          await ctx.client.deletePvc(a.namespace, a.name);
        break;
      case 'createDataSource':
        if (await ctx.client.createDataSource(a.ds))
          ctx.log.info('created DataSource', {
            ds: `${a.ds.metadata.namespace ?? ''}/${a.ds.metadata.name ?? ''}`,
          });
        break;
      case 'patchDataSource':
        await ctx.client.patchDataSource(a.namespace, a.name, {
          ...(a.labels === undefined ? {} : { metadata: { labels: a.labels } }),
          ...(a.source === undefined ? {} : { spec: { source: a.source } }),
        });
        break;
      case 'deleteDataSource':
        await ctx.client.deleteDataSource(a.namespace, a.name);
        break;
      default: {
        const r = await execute(ctx, [a]);
        if (r !== undefined) requeue = requeue === undefined ? r : Math.min(requeue, r);
      }
    }
  }
  return requeue;
}
