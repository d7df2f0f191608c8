// SPDX-License-Identifier: Apache-2.0
/**
 * Storage-side ("smart") clones, pure. The storage copies the data; the controller only asks:
 * - `snapshot` of a claim: a temporary VolumeSnapshot `tmp-snapshot-<DataVolume UID>` of the source
 *   (owned by the DataVolume), then the target claim with that snapshot as `dataSourceRef`;
 * - `csi-clone`: the target claim with the source claim as `dataSourceRef`;
 * - `source.snapshot` (or a DataSource naming a snapshot): the target claim restored from it.
 * The target is created at the source's size, as CDI does, and raised to the size asked for once
 * bound (the class allows expansion, or the strategy fell back to copy). When its capacity
 * reaches that size the controller marks it done (`clonePhase` and the pod phase annotation
 * `Succeeded`, so it counts as populated like any CDI target) and deletes the temporary
 * snapshot. The claim's annotations carry the state, so a restarted controller carries on.
 */
import type { V1OwnerReference, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { Annotations } from '../../common/contract.js';
import type { DataVolume } from '../../common/api/datavolume.js';
import { DataVolumePhases, PodPhases, type DataVolumePhase } from '../../common/api/phases.js';
import { parseQuantity } from '../../common/quantity.js';
import type { Action } from '../actions.js';
import { annotation, type ClaimRef } from '../builders/claim.js';
import type { VolumeSnapshot } from '../kube.js';
import { CloneStrategies } from './clone-strategy.js';

/** The annotations a smart clone's target carries. */
export const SmartCloneAnnotations = {
  /** CDI's: `snapshot` or `csi-clone` (copy targets carry `copy`). */
  CloneType: 'cdi.kubevirt.io/cloneType',
  /** CDI's populator phase: `SnapshotClone`, `CSIClone`, then `Succeeded`. */
  ClonePhase: 'cdi.kubevirt.io/clonePhase',
  /** CDI's: why a storage-side clone fell back to the host-assisted copy. */
  FallbackReason: 'cdi.kubevirt.io/cloneFallbackReason',
  /** Ours: the request the target grows to once bound. */
  DesiredStorage: 'cdi.kubevirt.io/smartClone.desiredStorage',
  /** Ours: the temporary snapshot to delete when done. */
  TempSnapshot: 'cdi.kubevirt.io/smartClone.tempSnapshot',
  /** Ours: the source as event messages name it (`pvc ns/name` or `snapshot ns/name`). */
  Source: 'cdi.kubevirt.io/smartClone.source',
} as const;

/** CDI's clone phase names (`pkg/controller/clone`). */
export const ClonePhaseNames = {
  SnapshotClone: 'SnapshotClone',
  CSIClone: 'CSIClone',
  Succeeded: 'Succeeded',
} as const;

/** What the reconcile read of the snapshot a clone restores from. */
export interface SnapshotInfo {
  readonly ready: boolean;
  /** `status.restoreSize` as a quantity. */
  readonly restoreSize: string | undefined;
  /** The content's `spec.driver`. */
  readonly driver: string | undefined;
  /** The content's `spec.sourceVolumeMode` is Block. */
  readonly block: boolean;
  readonly deleting: boolean;
}

/** The temporary snapshot of a smart clone (CDI's name, after the DataVolume's UID here). */
export function tempSnapshotName(dv: DataVolume): string {
  return `tmp-snapshot-${dv.metadata.uid ?? ''}`;
}

/** The claim a snapshot is restored into for a host-assisted copy (CDI's name). */
export function restoreClaimName(dv: DataVolume): string {
  return `tmp-source-pvc-${dv.metadata.uid ?? ''}`;
}

/** The reference that makes `dv` the controlling owner of a temporary object. */
function dataVolumeOwnerReference(dv: DataVolume): V1OwnerReference {
  return {
    apiVersion: dv.apiVersion ?? 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    name: dv.metadata.name ?? '',
    uid: dv.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The temporary snapshot of `source` for `dv`, owned by the DataVolume. */
export function buildTempSnapshot(
  dv: DataVolume,
  source: ClaimRef,
  snapshotClass: string,
): VolumeSnapshot {
  return {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: {
      name: tempSnapshotName(dv),
      namespace: source.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'cdi-controller' },
      ownerReferences: [dataVolumeOwnerReference(dv)],
    },
    spec: {
      source: { persistentVolumeClaimName: source.name },
      volumeSnapshotClassName: snapshotClass,
    },
  };
}

/**
 * The claim a snapshot is restored into for a host-assisted copy (owned by the DataVolume): the
 * snapshot's size and mode, a class of its driver.
 */
export function buildSnapshotRestoreClaim(
  dv: DataVolume,
  snapshot: ClaimRef,
  info: SnapshotInfo,
  storageClassName: string,
): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: restoreClaimName(dv),
      namespace: snapshot.namespace,
      ownerReferences: [dataVolumeOwnerReference(dv)],
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName,
      volumeMode: info.block ? 'Block' : 'Filesystem',
      resources: { requests: { storage: info.restoreSize ?? '' } },
      dataSourceRef: {
        apiGroup: 'snapshot.storage.k8s.io',
        kind: 'VolumeSnapshot',
        name: snapshot.name,
      },
    },
  };
}

/** What a smart target is created from. */
export interface SmartTargetSource {
  readonly strategy: typeof CloneStrategies.Snapshot | typeof CloneStrategies.CsiClone;
  /** `{kind, name}` of the `dataSourceRef`. */
  readonly dataSource: { readonly kind: 'VolumeSnapshot' | 'PersistentVolumeClaim'; name: string };
  /** The size the target starts at (the source's). */
  readonly startStorage: string;
  /** Set for a temporary snapshot to delete when done. */
  readonly tempSnapshot?: string;
  /** How event messages name the source. */
  readonly sourceText: string;
}

/**
 * The smart target from the claim a copy would create (`base`: names, owner, class, modes,
 * labels): no host-assisted clone annotations, a `dataSourceRef`, the source's size.
 */
export function buildSmartTarget(
  base: V1PersistentVolumeClaim,
  from: SmartTargetSource,
): V1PersistentVolumeClaim {
  const annotations: Record<string, string> = { ...base.metadata?.annotations };
  for (const hostAssisted of [
    Annotations.CloneRequest,
    Annotations.UploadTarget,
    Annotations.UploadClientName,
  ])
    delete annotations[hostAssisted];
  const desired = base.spec?.resources?.requests?.['storage'] ?? from.startStorage;
  annotations[SmartCloneAnnotations.CloneType] = from.strategy;
  annotations[SmartCloneAnnotations.ClonePhase] =
    from.dataSource.kind === 'VolumeSnapshot'
      ? ClonePhaseNames.SnapshotClone
      : ClonePhaseNames.CSIClone;
  annotations[SmartCloneAnnotations.DesiredStorage] = String(desired);
  annotations[SmartCloneAnnotations.Source] = from.sourceText;
  if (from.tempSnapshot !== undefined)
    annotations[SmartCloneAnnotations.TempSnapshot] = from.tempSnapshot;
  const spec = base.spec ?? {};
  return {
    ...base,
    metadata: { ...base.metadata, annotations },
    spec: {
      ...spec,
      resources: {
        ...spec.resources,
        requests: { ...spec.resources?.requests, storage: from.startStorage },
      },
      dataSourceRef: {
        ...(from.dataSource.kind === 'VolumeSnapshot'
          ? { apiGroup: 'snapshot.storage.k8s.io' }
          : {}),
        kind: from.dataSource.kind,
        name: from.dataSource.name,
      },
    },
  };
}

/** True for the target of a storage-side clone. */
export function isSmartTarget(pvc: V1PersistentVolumeClaim): boolean {
  const type = annotation(pvc, SmartCloneAnnotations.CloneType);
  return type === CloneStrategies.Snapshot || type === CloneStrategies.CsiClone;
}

/** A quantity's bytes, or undefined when it is absent or malformed. */
export function bytesOf(text: string | number | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseQuantity(String(text));
  } catch {
    return undefined;
  }
}

function needsExpansion(pvc: V1PersistentVolumeClaim): boolean {
  const desired = bytesOf(annotation(pvc, SmartCloneAnnotations.DesiredStorage));
  const capacity = bytesOf(pvc.status?.capacity?.['storage']);
  return desired !== undefined && capacity !== undefined && capacity < desired;
}

/** The phase of a smart target not done yet; undefined for other claims and finished ones. */
export function smartTargetPhase(pvc: V1PersistentVolumeClaim): DataVolumePhase | undefined {
  if (!isSmartTarget(pvc)) return undefined;
  const phase = annotation(pvc, SmartCloneAnnotations.ClonePhase);
  if (phase === ClonePhaseNames.Succeeded) return undefined;
  if (pvc.status?.phase === 'Bound' && needsExpansion(pvc))
    return DataVolumePhases.ExpansionInProgress;
  return phase === ClonePhaseNames.CSIClone
    ? DataVolumePhases.CSICloneInProgress
    : DataVolumePhases.CloneFromSnapshotSourceInProgress;
}

/**
 * The next step of a bound smart target: raise its request to the size asked for, wait for the
 * capacity, then delete the temporary snapshot and mark the target done.
 */
export function smartTargetSteps(pvc: V1PersistentVolumeClaim): Action[] {
  if (!isSmartTarget(pvc) || pvc.status?.phase !== 'Bound') return [];
  if (annotation(pvc, SmartCloneAnnotations.ClonePhase) === ClonePhaseNames.Succeeded) return [];
  return needsExpansion(pvc) ? expansionSteps(pvc) : completionSteps(pvc);
}

/** Raises the request to the size asked for, once (then the capacity follows). */
function expansionSteps(pvc: V1PersistentVolumeClaim): Action[] {
  const desired = annotation(pvc, SmartCloneAnnotations.DesiredStorage) ?? '';
  const requested = bytesOf(pvc.spec?.resources?.requests?.['storage']) ?? 0;
  if (requested >= (bytesOf(desired) ?? 0)) return [];
  const namespace = pvc.metadata?.namespace ?? '';
  return [{ kind: 'resizePvc', namespace, name: pvc.metadata?.name ?? '', storage: desired }];
}

/** Deletes the temporary snapshot and marks the target done. */
function completionSteps(pvc: V1PersistentVolumeClaim): Action[] {
  const namespace = pvc.metadata?.namespace ?? '';
  const temp = annotation(pvc, SmartCloneAnnotations.TempSnapshot);
  const done: Action = {
    kind: 'patchPvc',
    namespace,
    name: pvc.metadata?.name ?? '',
    annotations: {
      [SmartCloneAnnotations.ClonePhase]: ClonePhaseNames.Succeeded,
      [Annotations.PodPhase]: PodPhases.Succeeded,
      [SmartCloneAnnotations.TempSnapshot]: null,
    },
  };
  return temp === undefined
    ? [done]
    : [{ kind: 'deleteVolumeSnapshot', namespace, name: temp }, done];
}
