// SPDX-License-Identifier: Apache-2.0
/**
 * How a claim's missing access and volume modes come from its StorageProfile: one rule for the
 * controller rendering a DataVolume's `storage` claim and for the PVC mutating webhook rendering a
 * PVC labelled `cdi.kubevirt.io/applyStorageProfile`. Pure.
 */
import type { ClaimPropertySet, ClaimSpec } from '../api/datavolume.js';

/** The access and volume modes a `storage` claim gets. */
export interface StorageModes {
  readonly accessModes: string[];
  readonly volumeMode: string;
}

/**
 * Access and volume modes of a claim (CDI `renderPvcSpec`): what the spec gives, the rest from
 * `sets`, the `status.claimPropertySets` of the claim class's StorageProfile.
 * Both missing: the profile's first claim property set. Only a volume mode given: the access modes
 * of the first set with that volume mode. Only access modes given: the volume mode of the first
 * set holding all of them. What the profile cannot answer (no profile, no sets, no match) falls
 * back to ReadWriteOnce and Filesystem (ADR 0015).
 */
export function chooseStorageModes(
  storage: Pick<ClaimSpec, 'accessModes' | 'volumeMode'>,
  sets: readonly ClaimPropertySet[],
): StorageModes {
  const givenAccess =
    storage.accessModes === undefined || storage.accessModes.length === 0
      ? undefined
      : [...storage.accessModes];
  const givenVolume =
    storage.volumeMode === undefined ||
    storage.volumeMode === '' ||
    storage.volumeMode === 'FromStorageProfile'
      ? undefined
      : storage.volumeMode;
  if (givenAccess !== undefined && givenVolume !== undefined)
    return { accessModes: givenAccess, volumeMode: givenVolume };
  const setVolume = (s: ClaimPropertySet): string =>
    s.volumeMode === undefined || s.volumeMode === '' ? 'Filesystem' : s.volumeMode;
  let chosen: ClaimPropertySet | undefined;
  if (givenAccess === undefined && givenVolume === undefined) chosen = sets[0];
  else if (givenAccess === undefined) chosen = sets.find((s) => setVolume(s) === givenVolume);
  else chosen = sets.find((s) => givenAccess.every((m) => (s.accessModes ?? []).includes(m)));
  const chosenAccess =
    chosen?.accessModes === undefined || chosen.accessModes.length === 0
      ? undefined
      : [...chosen.accessModes];
  return {
    accessModes: givenAccess ?? chosenAccess ?? ['ReadWriteOnce'],
    volumeMode: givenVolume ?? (chosen === undefined ? 'Filesystem' : setVolume(chosen)),
  };
}
