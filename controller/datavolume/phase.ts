// SPDX-License-Identifier: Apache-2.0
/**
 * A DataVolume's phase, derived from its claim and the annotations the import reconcile writes
 * (CDI `controller-base.go` `updateStatus`, `import-controller.go` `updateStatusPhase`). Pure.
 */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { Annotations } from '../../common/contract.js';
import { DataVolumePhases, PodPhases, type DataVolumePhase } from '../../common/api/phases.js';
import { annotation, cloneRequestOf } from '../builders/claim.js';

/** Inputs of {@link derivePhase}. */
export interface PhaseInput {
  /** The target claim; undefined when it does not exist (yet, or any more). */
  readonly pvc: V1PersistentVolumeClaim | undefined;
  /** The claim's storage class binds on first consumer. */
  readonly waitForFirstConsumer: boolean;
}

function uploadPhase(podPhase: string | undefined, ready: boolean): DataVolumePhase {
  if (podPhase === PodPhases.Succeeded) return DataVolumePhases.Succeeded;
  if (podPhase === PodPhases.Running && ready) return DataVolumePhases.UploadReady;
  return DataVolumePhases.UploadScheduled;
}

function importPhase(pvc: V1PersistentVolumeClaim, podPhase: string | undefined): DataVolumePhase {
  if (annotation(pvc, Annotations.FatalError) === 'true') return DataVolumePhases.Failed;
  switch (podPhase) {
    case PodPhases.Succeeded:
      return DataVolumePhases.Succeeded;
    case PodPhases.Running:
    case PodPhases.Failed:
      // A failed pod is retried: the DataVolume stays in progress unless the error is fatal.
      return DataVolumePhases.ImportInProgress;
    case PodPhases.Pending:
      return DataVolumePhases.ImportScheduled;
    default:
      return annotation(pvc, Annotations.ImportPodName) === undefined
        ? DataVolumePhases.PVCBound
        : DataVolumePhases.ImportScheduled;
  }
}

/** A clone target shows CDI's clone phases where an import shows its import phases. */
function asClone(phase: DataVolumePhase): DataVolumePhase {
  // A network clone's target is an upload target: ready means the source pod may stream.
  if (phase === DataVolumePhases.ImportScheduled || phase === DataVolumePhases.UploadScheduled)
    return DataVolumePhases.CloneScheduled;
  if (phase === DataVolumePhases.ImportInProgress || phase === DataVolumePhases.UploadReady)
    return DataVolumePhases.CloneInProgress;
  return phase;
}

/** The phase a DataVolume shows for the state of its claim. */
export function derivePhase(input: PhaseInput): DataVolumePhase {
  const phase = deriveTransferPhase(input);
  return input.pvc !== undefined && cloneRequestOf(input.pvc) !== undefined
    ? asClone(phase)
    : phase;
}

function deriveTransferPhase(input: PhaseInput): DataVolumePhase {
  const { pvc } = input;
  if (pvc === undefined || pvc.metadata?.deletionTimestamp !== undefined)
    return DataVolumePhases.Pending;
  const podPhase = annotation(pvc, Annotations.PodPhase);
  const isUpload = pvc.metadata?.annotations?.[Annotations.UploadTarget] !== undefined;
  switch (pvc.status?.phase) {
    case 'Lost':
      return DataVolumePhases.Failed;
    case 'Bound':
      return isUpload
        ? uploadPhase(podPhase, annotation(pvc, Annotations.PodReady) === 'true')
        : importPhase(pvc, podPhase);
    case 'Pending':
    case undefined: {
      // An importer pod may already run against a WaitForFirstConsumer claim (immediate binding
      // requested): follow the pod then.
      if (podPhase !== undefined && !isUpload) return importPhase(pvc, podPhase);
      const immediate = annotation(pvc, Annotations.BindImmediate) !== undefined;
      return input.waitForFirstConsumer && !immediate
        ? DataVolumePhases.WaitForFirstConsumer
        : DataVolumePhases.Pending;
    }
    default:
      return DataVolumePhases.Unknown;
  }
}
