// SPDX-License-Identifier: Apache-2.0
/**
 * When a clone's source claim can be read (CDI `validateCloneAndSourcePVC`, `IsPopulated`): it
 * exists, is bound, is not being deleted, and is not still being filled by CDI (an import,
 * upload or clone target whose pod has not succeeded). Until then no pod runs and the message
 * says why, in CDI's words where CDI has them. Pure.
 */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { Annotations } from '../../common/contract.js';
import { PodPhases } from '../../common/api/phases.js';
import { annotation, cloneRequestOf, type ClaimRef } from '../builders/claim.js';

/** True when CDI fills this claim (import, upload or clone target). */
function isCdiTarget(pvc: V1PersistentVolumeClaim): boolean {
  const anns = pvc.metadata?.annotations ?? {};
  return (
    Annotations.Endpoint in anns ||
    Annotations.Source in anns ||
    Annotations.CloneRequest in anns ||
    Annotations.UploadTarget in anns ||
    // A storage-side clone's target (its clone type annotation, CDI `cdi.kubevirt.io/cloneType`).
    'cdi.kubevirt.io/cloneType' in anns
  );
}

/** True when the claim holds its final content: bound, and any CDI population finished. */
export function isPopulated(pvc: V1PersistentVolumeClaim): boolean {
  if (pvc.status?.phase !== 'Bound') return false;
  return !isCdiTarget(pvc) || annotation(pvc, Annotations.PodPhase) === PodPhases.Succeeded;
}

/** Why a clone from `source` (named `ref`) cannot start yet, or undefined when it can. */
export function sourceWaitMessage(
  ref: ClaimRef,
  source: V1PersistentVolumeClaim | undefined,
): string | undefined {
  if (source === undefined) return `The source pvc ${ref.name} doesn't exist`;
  if (source.metadata?.deletionTimestamp !== undefined)
    return `The source pvc ${ref.name} is being deleted`;
  if (source.status?.phase !== 'Bound') return `The source pvc ${ref.name} is not bound yet`;
  if (!isPopulated(source)) return `The source pvc ${ref.name} is still being populated`;
  return undefined;
}

/** For a clone target claim: why its importer cannot start yet; undefined for other claims. */
export function cloneWaitMessage(
  target: V1PersistentVolumeClaim,
  source: V1PersistentVolumeClaim | undefined,
): string | undefined {
  const ref = cloneRequestOf(target);
  if (ref === undefined) return undefined;
  return sourceWaitMessage(ref, source);
}
