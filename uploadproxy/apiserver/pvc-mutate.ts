// SPDX-License-Identifier: Apache-2.0
/**
 * CDI's PVC mutating webhook (`/pvc-mutate`, AdmissionReview v1, CDI `pvc-mutate.go`): a PVC
 * created with the label `cdi.kubevirt.io/applyStorageProfile: "true"` gets the access modes and
 * volume mode it leaves out (or `volumeMode: FromStorageProfile`) from its class's StorageProfile,
 * by the rule the controller renders a DataVolume's `storage` claim with
 * (common/datavolume/storage-modes.ts). Other PVCs and updates pass unchanged. The API server
 * defaults `volumeMode` to Filesystem before admission, so a claim wanting the profile's volume
 * mode says `FromStorageProfile`, as with CDI.
 */
import type { ClaimPropertySet } from '../../common/api/datavolume.js';
import { chooseStorageModes } from '../../common/datavolume/storage-modes.js';
import { errorMessage } from '../../common/errors.js';
import {
  admissionRequestOf,
  allowed,
  failed,
  rec,
  str,
  wrongResource,
  type Json,
} from './admission-review.js';

/** The path CDI registers the webhook under. */
export const PVC_MUTATE_PATH = '/pvc-mutate';
/** The label asking for the rendering (CDI `PvcApplyStorageProfileLabel`). */
export const APPLY_STORAGE_PROFILE_LABEL = 'cdi.kubevirt.io/applyStorageProfile';

/** What the handler needs from the cluster. */
export interface PvcMutateDeps {
  /**
   * `status.claimPropertySets` of the StorageProfile of `storageClassName` (the default class
   * when undefined); empty when there is no such class or profile.
   */
  claimPropertySets(storageClassName: string | undefined): Promise<readonly ClaimPropertySet[]>;
}

/** Answers one AdmissionReview (v1) body with the review to send back. */
export async function mutatePvcReview(review: unknown, deps: PvcMutateDeps): Promise<Json> {
  const req = admissionRequestOf(review);
  if (req.operation !== 'CREATE') return allowed(req.uid);
  const wrong = wrongResource(req, '', 'persistentvolumeclaims');
  if (wrong !== undefined) return wrong;
  // The webhook's objectSelector sends only labelled claims; a misregistered one changes nothing.
  if (rec(rec(req.object['metadata'])['labels'])[APPLY_STORAGE_PROFILE_LABEL] !== 'true')
    return allowed(req.uid);
  const spec = rec(req.object['spec']);
  const accessModes = Array.isArray(spec['accessModes']) ? spec['accessModes'].map(str) : [];
  const volumeMode = str(spec['volumeMode']);
  const className = str(spec['storageClassName']);
  let sets: readonly ClaimPropertySet[];
  try {
    sets = await deps.claimPropertySets(className === '' ? undefined : className);
  } catch (err) {
    return failed(req.uid, errorMessage(err));
  }
  const modes = chooseStorageModes(
    {
      ...(accessModes.length === 0 ? {} : { accessModes }),
      ...(volumeMode === '' ? {} : { volumeMode }),
    },
    sets,
  );
  const patch: unknown[] = [];
  if (req.object['spec'] === undefined) patch.push({ op: 'add', path: '/spec', value: {} });
  if (accessModes.length === 0)
    patch.push({ op: 'add', path: '/spec/accessModes', value: modes.accessModes });
  // `add` replaces an existing member (RFC 6902), so FromStorageProfile is overwritten too.
  if (volumeMode === '' || volumeMode === 'FromStorageProfile')
    patch.push({ op: 'add', path: '/spec/volumeMode', value: modes.volumeMode });
  return allowed(req.uid, patch);
}
