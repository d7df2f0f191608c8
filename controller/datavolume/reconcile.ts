// SPDX-License-Identifier: Apache-2.0
/**
 * The DataVolume reconcile: read the DataVolume, its claim and importer pod from the informer
 * caches, scrape progress while the import runs, call the pure {@link decideDataVolume}, and
 * apply its actions.
 */
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { Annotations } from '../../common/contract.js';
import type { DataSource, DataVolume } from '../api/datavolume.js';
import { PodPhases } from '../api/phases.js';
import { isWaitForFirstConsumer, type EffectiveConfig } from '../config.js';
import { execute, type ExecutorContext } from '../executor.js';
import { importerPodName, uploadPodName } from '../builders/naming.js';
import { isUploadClaim } from '../pvc/upload-reconcile.js';
import { ownerUid } from '../builders/claim.js';
import { resolveCloneSource } from './clone-resolve.js';
import { decideDataVolume, isOwnedBy } from './decide.js';
import type { TransferScrape } from '../progress-scraper.js';

/** Read-only views of the caches a reconcile reads. */
export interface Caches {
  readonly dataVolumes: { get(name: string, namespace?: string): DataVolume | undefined };
  readonly pvcs: { get(name: string, namespace?: string): V1PersistentVolumeClaim | undefined };
  readonly pods: { get(name: string, namespace?: string): V1Pod | undefined };
  /** DataSources (for `sourceRef` clones). */
  readonly dataSources: { get(name: string, namespace?: string): DataSource | undefined };
}

/** Everything the DataVolume reconcile needs. */
export interface DataVolumeReconcileContext extends ExecutorContext {
  readonly caches: Caches;
  /** Scrapes a transfer pod's progress and upload refusal (injectable for tests). */
  readonly scrape: (podIp: string, ownerUid: string) => Promise<TransferScrape>;
}

/** Splits a `namespace/name` key. */
export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0
    ? { namespace: '', name: key }
    : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

function storageClassOf(
  dv: DataVolume,
  pvc: V1PersistentVolumeClaim | undefined,
): string | undefined {
  return (
    pvc?.spec?.storageClassName ??
    dv.spec?.pvc?.storageClassName ??
    dv.spec?.storage?.storageClassName
  );
}

async function progressOf(
  ctx: DataVolumeReconcileContext,
  dv: DataVolume,
  pvc: V1PersistentVolumeClaim,
): Promise<TransferScrape> {
  if (pvc.metadata?.annotations?.[Annotations.PodPhase] !== PodPhases.Running) return {};
  const anns = pvc.metadata.annotations;
  const pvcName = pvc.metadata.name ?? '';
  // Upload servers serve the same progress counter as importers, on their own port 8443.
  const podName = isUploadClaim(pvc)
    ? (anns[Annotations.UploadPodName] ?? uploadPodName(pvcName))
    : (anns[Annotations.ImportPodName] ?? importerPodName(pvcName));
  const pod = ctx.caches.pods.get(podName, pvc.metadata.namespace);
  const ip = pod?.status?.podIP;
  if (ip === undefined || ip === '') return {};
  return ctx.scrape(ip, dv.metadata.uid ?? ownerUid(pvc));
}

/** Reconciles one DataVolume; returns a requeue delay when it wants to run again. */
export async function reconcileDataVolume(
  ctx: DataVolumeReconcileContext,
  key: string,
): Promise<number | undefined> {
  const { namespace, name } = splitKey(key);
  const dv = ctx.caches.dataVolumes.get(name, namespace);
  if (dv === undefined) return undefined;
  const pvc = ctx.caches.pvcs.get(name, namespace);
  const config: EffectiveConfig = ctx.config();
  const { progress, refusal } =
    pvc !== undefined && isOwnedBy(pvc, dv) ? await progressOf(ctx, dv, pvc) : {};
  // A clone's source matters only until its target exists (then the claim carries it).
  const cloneSource =
    pvc === undefined
      ? resolveCloneSource(dv, {
          pvc: (ns, n) => ctx.caches.pvcs.get(n, ns),
          dataSource: (ns, n) => ctx.caches.dataSources.get(n, ns),
        })
      : undefined;
  const actions = decideDataVolume({
    dv,
    pvc,
    config,
    waitForFirstConsumer: isWaitForFirstConsumer(config, storageClassOf(dv, pvc)),
    ...(progress === undefined ? {} : { progress }),
    ...(refusal === undefined ? {} : { uploadRefusal: refusal }),
    ...(cloneSource === undefined ? {} : { cloneSource }),
    now: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  });
  return execute(ctx, actions);
}
