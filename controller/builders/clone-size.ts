// SPDX-License-Identifier: Apache-2.0
/**
 * Sizes of a host-assisted clone (CDI `clone` size detection and `ValidateRequestedCloneSize`):
 * what a claim can hold (its usable space: the whole device for block, the request less the
 * filesystem overhead for a filesystem claim), the target size to default to when the DataVolume
 * gives none, and the check that an explicit target can hold the source. Pure.
 */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { parseQuantity } from '../../common/quantity.js';
import { ConditionMessages } from '../../common/api/phases.js';
import { filesystemOverheadFor, type EffectiveConfig } from '../config.js';
import { isBlock } from './claim.js';
import { requiredSpace, usableSpace } from './size.js';

/** A claim's size in bytes: its request, else its capacity; undefined when neither parses. */
export function claimBytes(pvc: V1PersistentVolumeClaim): number | undefined {
  const text = pvc.spec?.resources?.requests?.['storage'] ?? pvc.status?.capacity?.['storage'];
  if (text === undefined) return undefined;
  try {
    return parseQuantity(String(text));
  } catch {
    return undefined;
  }
}

/** Bytes of image a claim of `bytes` can hold. */
export function contentBytes(bytes: number, block: boolean, overhead: number): number {
  return block ? bytes : usableSpace(bytes, overhead);
}

/** A claim as the size rules see it. */
export interface SizedClaim {
  readonly bytes: number;
  readonly block: boolean;
  readonly storageClassName: string | undefined;
}

/** The source claim as a {@link SizedClaim}, or undefined when its size is unknown. */
export function sizedSource(pvc: V1PersistentVolumeClaim): SizedClaim | undefined {
  const bytes = claimBytes(pvc);
  return bytes === undefined
    ? undefined
    : { bytes, block: isBlock(pvc), storageClassName: pvc.spec?.storageClassName };
}

/**
 * The request of a target with no size of its own (CDI: the source's size): the source's request
 * when both claims have the same volume mode, else the size that holds the source's content.
 */
export function defaultCloneSize(
  source: SizedClaim,
  target: { readonly block: boolean; readonly storageClassName: string | undefined },
  config: EffectiveConfig,
): number {
  if (source.block === target.block) return source.bytes;
  const content = contentBytes(
    source.bytes,
    source.block,
    filesystemOverheadFor(config, source.storageClassName),
  );
  return target.block
    ? content
    : requiredSpace(content, filesystemOverheadFor(config, target.storageClassName));
}

/**
 * CDI's check that the target can hold the source (usable space against usable space); the
 * message is CDI's, prefixed as its clone validation condition is. Undefined when it fits.
 */
export function cloneSizeProblem(
  source: SizedClaim,
  target: SizedClaim,
  config: EffectiveConfig,
): string | undefined {
  const need = contentBytes(
    source.bytes,
    source.block,
    filesystemOverheadFor(config, source.storageClassName),
  );
  const have = contentBytes(
    target.bytes,
    target.block,
    filesystemOverheadFor(config, target.storageClassName),
  );
  return have < need
    ? `${ConditionMessages.CloneValidationFailed}: ${ConditionMessages.CloneTooSmall} (${have} < ${need} usable bytes)`
    : undefined;
}
