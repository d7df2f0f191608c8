// SPDX-License-Identifier: Apache-2.0
/**
 * The DataVolume reconcile: read the DataVolume, its claim and importer pod from the informer
 * caches, scrape progress while the import runs, call the pure {@link decideDataVolume}, and
 * apply its actions.
 */
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { Annotations } from '../../common/contract.js';
import type { DataSource, DataVolume } from '../../common/api/datavolume.js';
import { PodPhases } from '../../common/api/phases.js';
import { isWaitForFirstConsumer, type EffectiveConfig } from '../config.js';
import { execute, type ExecutorContext } from '../executor.js';
import { importerPodName, uploadPodName } from '../builders/naming.js';
import { isUploadClaim } from '../pvc/upload-reconcile.js';
import { ownerUid, type ClaimRef } from '../builders/claim.js';
import {
  EXTENDED_CLONE_TOKEN_ANNOTATION,
  cloneTokenProblem,
  signCloneToken,
} from '../../common/clone-token.js';
import { resolveCloneSource, type ResolvedCloneSource } from './clone-resolve.js';
import type { SnapshotClassView } from './clone-strategy.js';
import { restoreClaimName, tempSnapshotName, type SnapshotInfo } from './smart-clone.js';
import type { KubeClient } from '../kube.js';

/** The annotation marking the default VolumeSnapshotClass. */
const DEFAULT_SNAPSHOT_CLASS = 'snapshot.storage.kubernetes.io/is-default-class';
import { sourceWaitMessage } from '../pvc/clone-source.js';
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

/** What the clone token check found: a problem, or a valid token and perhaps its extension. */
interface TokenCheck {
  readonly problem?: string;
  /** The extended token to store on the DataVolume (first successful check). */
  readonly extended?: string;
}

/**
 * Whether a clone from another namespace may start (CDI `ValidateCloneTokenDV`): its short token,
 * added by the DataVolume webhook after a SubjectAccessReview, must name this source and target
 * and not have expired; once it checked, an extended token bound to the DataVolume's UID replaces
 * it for later checks (CDI `ensureExtendedTokenDV`), so a clone may wait for its source longer
 * than the short token lives.
 */
async function checkCloneToken(
  ctx: DataVolumeReconcileContext,
  dv: DataVolume,
  source: ClaimRef,
): Promise<TokenCheck> {
  const anns = dv.metadata.annotations ?? {};
  const key = ctx.pki?.tokenPublicKey();
  if (key === undefined) return { problem: 'the token signing key is not ready yet' };
  const grant = {
    sourceNamespace: source.namespace,
    sourceName: source.name,
    targetNamespace: dv.metadata.namespace ?? '',
    targetName: dv.metadata.name ?? '',
  };
  const uid = { uid: dv.metadata.uid ?? '' };
  const extended = anns[EXTENDED_CLONE_TOKEN_ANNOTATION];
  if (extended !== undefined && extended !== '') {
    const problem = await cloneTokenProblem(key, extended, grant, undefined, uid);
    return problem === undefined ? {} : { problem };
  }
  const token = anns[Annotations.CloneToken];
  if (token === undefined || token === '') return { problem: 'clone token missing' };
  const problem = await cloneTokenProblem(key, token, grant);
  if (problem !== undefined) return { problem };
  const signer = ctx.pki?.tokenPrivateKey();
  return signer === undefined
    ? {}
    : { extended: await signCloneToken(signer, grant, undefined, uid) };
}

/** The cluster's VolumeSnapshotClasses as the strategy reads them. */
export async function readSnapshotClasses(client: KubeClient): Promise<SnapshotClassView[]> {
  return (await client.listVolumeSnapshotClasses()).map((c) => ({
    name: c.metadata?.name ?? '',
    driver: c.driver ?? '',
    isDefault: c.metadata?.annotations?.[DEFAULT_SNAPSHOT_CLASS] === 'true',
  }));
}

/** What a VolumeSnapshot and its content say, read through the API (they are not cached). */
async function readSnapshot(
  ctx: DataVolumeReconcileContext,
  namespace: string,
  name: string,
): Promise<SnapshotInfo | undefined> {
  const vs = await ctx.client.getVolumeSnapshot(namespace, name);
  if (vs === undefined) return undefined;
  const contentName = vs.status?.boundVolumeSnapshotContentName;
  const content =
    contentName === undefined ? undefined : await ctx.client.getVolumeSnapshotContent(contentName);
  const restoreSize = vs.status?.restoreSize;
  return {
    ready: vs.status?.readyToUse === true,
    restoreSize: restoreSize === undefined ? undefined : String(restoreSize),
    driver: content?.spec?.driver,
    block: content?.spec?.sourceVolumeMode === 'Block',
    deleting: vs.metadata?.deletionTimestamp !== undefined,
  };
}

/** The snapshot state a clone without its target needs: its source snapshot or its temporary one. */
async function smartCloneInputs(
  ctx: DataVolumeReconcileContext,
  dv: DataVolume,
  source: ResolvedCloneSource | undefined,
): Promise<{ snapshot?: SnapshotInfo; snapshotClasses?: SnapshotClassView[] }> {
  if (source?.kind === 'snapshot') {
    const snapshot = await readSnapshot(ctx, source.ref.namespace, source.ref.name);
    return snapshot === undefined ? {} : { snapshot };
  }
  // A smart clone is possible only for a readable source in the same namespace.
  if (
    source?.kind !== 'claim' ||
    source.ref.namespace !== (dv.metadata.namespace ?? '') ||
    sourceWaitMessage(source.ref, source.pvc) !== undefined
  )
    return {};
  const snapshotClasses = await readSnapshotClasses(ctx.client);
  const snapshot = await readSnapshot(ctx, source.ref.namespace, tempSnapshotName(dv));
  return { snapshotClasses, ...(snapshot === undefined ? {} : { snapshot }) };
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
  const token =
    cloneSource?.kind === 'claim' && cloneSource.ref.namespace !== namespace
      ? await checkCloneToken(ctx, dv, cloneSource.ref)
      : {};
  const smart = pvc === undefined ? await smartCloneInputs(ctx, dv, cloneSource) : {};
  const actions = decideDataVolume({
    dv,
    pvc,
    config,
    waitForFirstConsumer: isWaitForFirstConsumer(config, storageClassOf(dv, pvc)),
    ...(progress === undefined ? {} : { progress }),
    ...(refusal === undefined ? {} : { uploadRefusal: refusal }),
    ...(cloneSource === undefined ? {} : { cloneSource }),
    ...(token.problem === undefined ? {} : { cloneTokenProblem: token.problem }),
    ...(token.extended === undefined ? {} : { extendedCloneToken: token.extended }),
    ...smart,
    tempClaim: ctx.caches.pvcs.get(restoreClaimName(dv), namespace),
    now: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  });
  return execute(ctx, actions);
}
