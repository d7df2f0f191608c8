// SPDX-License-Identifier: Apache-2.0
/**
 * The thin executor that applies a `decide()`'s actions in order through the API
 * (CONTRIBUTING.md). Before it creates an importer pod it re-reads the claim from the API, not
 * the cache: a cache a moment behind could otherwise start a second import after the first one
 * succeeded.
 */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { Annotations } from '../common/contract.js';
import type { Logger } from '../common/logger.js';
import { CdiError, ErrorCodes } from '../common/errors.js';
import { uploadServiceName } from '../common/contract.js';
import type {
  Action,
  CreateCloneSourcePodAction,
  CreatePodAction,
  CreateUploadPodAction,
  EnsureUploadSecretAction,
} from './actions.js';
import type { EffectiveConfig } from './config.js';
import type { EventRecorder } from './events.js';
import type { KubeClient } from './kube.js';
import { buildScratchPvc } from './builders/scratch-pvc.js';
import { buildUploadSecret } from './builders/upload-pod.js';
import { buildCloneSourceSecret } from './builders/clone-source-pod.js';
import type { CdiPki } from './pki/cdi-pki.js';
import { isFatal, isImportComplete } from './pvc/import-reconcile.js';
import { isUploadClaim } from './pvc/upload-reconcile.js';

/** What the executor needs. */
export interface ExecutorContext {
  readonly client: KubeClient;
  readonly recorder: EventRecorder;
  readonly log: Logger;
  readonly config: () => EffectiveConfig;
  /** Issues upload server certificates; absent where the controller serves no uploads (tests). */
  readonly pki?: CdiPki;
}

/** Applies actions in order; returns the shortest requested requeue delay, if any. */
export async function execute(
  ctx: ExecutorContext,
  actions: readonly Action[],
): Promise<number | undefined> {
  let requeue: number | undefined;
  for (const a of actions) {
    switch (a.kind) {
      case 'event':
        await ctx.recorder.record(a);
        break;
      case 'patchPvc':
        await ctx.client.patchPvcMetadata(a.namespace, a.name, {
          ...(Object.keys(a.annotations).length === 0 ? {} : { annotations: a.annotations }),
          ...(a.labels === undefined ? {} : { labels: a.labels }),
        });
        break;
      case 'createPvc':
        if (await ctx.client.createPvc(a.pvc)) {
          ctx.log.info('created PVC', {
            pvc: `${a.pvc.metadata?.namespace ?? ''}/${a.pvc.metadata?.name ?? ''}`,
          });
        }
        break;
      case 'createPod':
        await createImporterPod(ctx, a);
        break;
      case 'createUploadPod':
        await createUploadPod(ctx, a);
        break;
      case 'ensureUploadSecret':
        await ensureUploadSecret(ctx, a);
        break;
      case 'createCloneSourcePod':
        await createCloneSourcePod(ctx, a);
        break;
      case 'patchDvAnnotations':
        await ctx.client.patchDataVolumeAnnotations(a.namespace, a.name, a.annotations);
        break;
      case 'createService':
        if (await ctx.client.createService(a.service)) {
          ctx.log.info('created service', {
            service: `${a.service.metadata?.namespace ?? ''}/${a.service.metadata?.name ?? ''}`,
          });
        }
        break;
      case 'deleteService':
        await ctx.client.deleteService(a.namespace, a.name);
        break;
      case 'deleteSecret':
        await ctx.client.deleteSecret(a.namespace, a.name);
        break;
      case 'createVolumeSnapshot':
        if (await ctx.client.createVolumeSnapshot(a.snapshot))
          ctx.log.info('created VolumeSnapshot', {
            snapshot: `${a.snapshot.metadata?.namespace ?? ''}/${a.snapshot.metadata?.name ?? ''}`,
          });
        break;
      case 'deleteVolumeSnapshot':
        await ctx.client.deleteVolumeSnapshot(a.namespace, a.name);
        break;
      case 'deletePvc':
        ctx.log.info('deleting a temporary claim', { pvc: `${a.namespace}/${a.name}` });
        await ctx.client.deletePvc(a.namespace, a.name);
        break;
      case 'resizePvc':
        ctx.log.info('expanding PVC', { pvc: `${a.namespace}/${a.name}`, storage: a.storage });
        await ctx.client.resizePvc(a.namespace, a.name, a.storage);
        break;
      case 'deletePod':
        ctx.log.info('deleting pod', { pod: `${a.namespace}/${a.name}` });
        await ctx.client.deletePod(a.namespace, a.name);
        break;
      case 'updateDvStatus':
        await ctx.client.patchDataVolumeStatus(a.namespace, a.name, a.status);
        break;
      case 'updateDataSourceStatus':
        await ctx.client.patchDataSourceStatus(a.namespace, a.name, a.status);
        break;
      case 'createStorageProfile':
        if (await ctx.client.createStorageProfile(a.profile))
          ctx.log.info('created StorageProfile', { name: a.profile.metadata.name ?? '' });
        break;
      case 'patchStorageProfileStatus':
        await ctx.client.patchStorageProfileStatus(a.name, a.status);
        break;
      case 'deleteStorageProfile':
        ctx.log.info('deleting StorageProfile of a removed StorageClass', { name: a.name });
        await ctx.client.deleteStorageProfile(a.name);
        break;
      case 'requeue':
        requeue = requeue === undefined ? a.afterMs : Math.min(requeue, a.afterMs);
        break;
    }
  }
  return requeue;
}

function stillWanted(fresh: V1PersistentVolumeClaim | undefined, scratch: boolean): boolean {
  if (fresh === undefined || fresh.metadata?.deletionTimestamp !== undefined) return false;
  if (isImportComplete(fresh) || isFatal(fresh)) return false;
  return (fresh.metadata?.annotations?.[Annotations.RequiresScratch] === 'true') === scratch;
}

async function createImporterPod(ctx: ExecutorContext, a: CreatePodAction): Promise<void> {
  const namespace = a.pod.metadata?.namespace ?? '';
  const pvcName = a.pod.spec?.volumes?.[0]?.persistentVolumeClaim?.claimName ?? '';
  const fresh = await ctx.client.getPvc(namespace, pvcName);
  if (!stillWanted(fresh, a.scratch) || fresh === undefined) {
    ctx.log.debug('importer pod no longer wanted', { pvc: `${namespace}/${pvcName}` });
    return;
  }
  const created = await ctx.client.createPod(a.pod);
  if (created === undefined) return;
  ctx.log.info('created importer pod', {
    pod: `${namespace}/${a.pod.metadata?.name ?? ''}`,
    scratch: a.scratch,
  });
  if (a.scratch) await ctx.client.createPvc(buildScratchPvc(fresh, created, ctx.config()));
}

async function createUploadPod(ctx: ExecutorContext, a: CreateUploadPodAction): Promise<void> {
  const namespace = a.pod.metadata?.namespace ?? '';
  const pvcName = a.pod.metadata?.ownerReferences?.[0]?.name ?? '';
  const fresh = await ctx.client.getPvc(namespace, pvcName);
  const wanted =
    fresh !== undefined &&
    fresh.metadata?.deletionTimestamp === undefined &&
    isUploadClaim(fresh) &&
    fresh.metadata?.annotations?.[Annotations.PodPhase] !== 'Succeeded';
  if (!wanted) {
    ctx.log.debug('upload pod no longer wanted', { pvc: `${namespace}/${pvcName}` });
    return;
  }
  if ((await ctx.client.createPod(a.pod)) !== undefined)
    ctx.log.info('created upload pod', { pod: `${namespace}/${a.pod.metadata?.name ?? ''}` });
}

async function createCloneSourcePod(
  ctx: ExecutorContext,
  a: CreateCloneSourcePodAction,
): Promise<void> {
  if (ctx.pki === undefined)
    throw new CdiError(ErrorCodes.Internal, 'this controller has no upload certificate authority');
  const namespace = a.pod.metadata?.namespace ?? '';
  const name = a.pod.metadata?.name ?? '';
  // A fresh certificate each time: a Secret left from an earlier attempt is replaced.
  const secret = buildCloneSourceSecret(
    name,
    namespace,
    a.target.metadata?.uid ?? '',
    ctx.pki.issueCloneClientCertificate(a.clientName),
  );
  const existing = await ctx.client.getSecret(namespace, name);
  if (existing === undefined) await ctx.client.createSecret(secret);
  else
    await ctx.client.replaceSecret({
      ...secret,
      metadata: { ...secret.metadata, resourceVersion: existing.metadata?.resourceVersion ?? '' },
    });
  const created = await ctx.client.createPod(a.pod);
  if (created !== undefined)
    ctx.log.info('created clone source pod', {
      pod: `${namespace}/${name}`,
      target: `${a.target.metadata?.namespace ?? ''}/${a.target.metadata?.name ?? ''}`,
    });
}

async function ensureUploadSecret(
  ctx: ExecutorContext,
  a: EnsureUploadSecretAction,
): Promise<void> {
  if (ctx.pki === undefined)
    throw new CdiError(ErrorCodes.Internal, 'this controller has no upload certificate authority');
  const namespace = a.pvc.metadata?.namespace ?? '';
  const service = uploadServiceName(a.pvc.metadata?.name ?? '');
  const existing = await ctx.client.getSecret(namespace, service);
  if (ctx.pki.uploadServerSecretIsCurrent(existing)) return;
  const secret = buildUploadSecret(a.pvc, ctx.pki.issueUploadServerCertificate(service, namespace));
  if (existing === undefined) {
    await ctx.client.createSecret(secret);
  } else {
    await ctx.client.replaceSecret({
      ...secret,
      metadata: { ...secret.metadata, resourceVersion: existing.metadata?.resourceVersion ?? '' },
    });
  }
  ctx.log.info('issued upload server certificate', { secret: `${namespace}/${service}` });
}
