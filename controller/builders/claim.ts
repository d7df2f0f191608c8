// SPDX-License-Identifier: Apache-2.0
/** Reading a claim the way CDI's controllers do: annotations, volume mode, the progress owner. Pure. */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';

/** Annotation value, or undefined when absent or empty. */
export function annotation(pvc: V1PersistentVolumeClaim, key: string): string | undefined {
  const v = pvc.metadata?.annotations?.[key];
  return v === undefined || v === '' ? undefined : v;
}

/** True when the claim is a raw block volume. */
export function isBlock(pvc: V1PersistentVolumeClaim): boolean {
  return pvc.spec?.volumeMode === 'Block';
}

/** UID the progress metric is labelled with: the claim's single owner (the DataVolume), else the claim. */
export function ownerUid(pvc: V1PersistentVolumeClaim): string {
  const owners = pvc.metadata?.ownerReferences ?? [];
  const only = owners.length === 1 ? owners[0] : undefined;
  return only?.uid ?? pvc.metadata?.uid ?? '';
}
