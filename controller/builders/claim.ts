// SPDX-License-Identifier: Apache-2.0
/** Reading a claim the way CDI's controllers do: annotations, volume mode, the progress owner. Pure. */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { Annotations } from '../../common/contract.js';

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

/** A claim's namespace and name. */
export interface ClaimRef {
  readonly namespace: string;
  readonly name: string;
}

/** The source of a clone target (`k8s.io/CloneRequest: <namespace>/<name>`), if it is one. */
export function cloneRequestOf(pvc: V1PersistentVolumeClaim): ClaimRef | undefined {
  const value = annotation(pvc, Annotations.CloneRequest);
  if (value === undefined) return undefined;
  const i = value.indexOf('/');
  // CDI writes `<namespace>/<name>`; a bare name means the target's namespace.
  return i < 0
    ? { namespace: pvc.metadata?.namespace ?? '', name: value }
    : { namespace: value.slice(0, i), name: value.slice(i + 1) };
}

/** `<namespace>/<name>`, as CDI's clone annotation and event texts write a claim. */
export function claimRefText(ref: ClaimRef): string {
  return `${ref.namespace}/${ref.name}`;
}
