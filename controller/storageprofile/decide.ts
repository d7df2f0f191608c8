// SPDX-License-Identifier: Apache-2.0
/**
 * StorageProfiles (CDI `storageprofile-controller.go`): every StorageClass has a cluster-scoped
 * StorageProfile of the same name whose status tells the DataVolume `storage` API which access and
 * volume modes claims of that class get. `status.claimPropertySets` is the admin's
 * `spec.claimPropertySets` when set, else CDI's table of known provisioners, else absent. A
 * profile whose class is gone is deleted. Pure.
 */
import type {
  ClaimPropertySet,
  StorageProfile,
  StorageProfileStatus,
} from '../../common/api/datavolume.js';
import { CDI_GROUP, CDI_VERSION } from '../../common/api/datavolume.js';
import type { Action } from '../actions.js';

const RWO = 'ReadWriteOnce';
const RWX = 'ReadWriteMany';
const FS = 'Filesystem';
const BLOCK = 'Block';

const rwoFs: readonly ClaimPropertySet[] = [{ accessModes: [RWO], volumeMode: FS }];
const cephRbd: readonly ClaimPropertySet[] = [
  { accessModes: [RWX], volumeMode: BLOCK },
  { accessModes: [RWO], volumeMode: BLOCK },
  { accessModes: [RWO], volumeMode: FS },
];

/**
 * Known provisioners and the claim property sets CDI uses for them, a small excerpt of CDI's
 * `pkg/storagecapabilities/storagecapabilities.go` table (plus this project's sandbox provisioner,
 * which serves both volume modes: Filesystem first, so the default stays Filesystem).
 */
export const KNOWN_PROVISIONERS: ReadonlyMap<string, readonly ClaimPropertySet[]> = new Map([
  [
    'sandbox.cdi.kubevirt.io/hostpath',
    [
      { accessModes: [RWO], volumeMode: FS },
      { accessModes: [RWO], volumeMode: BLOCK },
    ],
  ],
  ['kubernetes.io/no-provisioner', rwoFs],
  ['kubevirt.io.hostpath-provisioner', rwoFs],
  ['kubevirt.io/hostpath-provisioner', rwoFs],
  ['hostpath.csi.kubevirt.io', rwoFs],
  ['rook-ceph.rbd.csi.ceph.com', cephRbd],
  ['openshift-storage.rbd.csi.ceph.com', cephRbd],
  ['rook-ceph.cephfs.csi.ceph.com', [{ accessModes: [RWX], volumeMode: FS }]],
]);

/** What a profile reconcile needs to know about its StorageClass. */
export interface StorageClassFacts {
  readonly name: string;
  readonly provisioner: string;
}

/** Input of {@link decideStorageProfile}: one class name, its class and profile if they exist. */
export interface StorageProfileInput {
  readonly name: string;
  readonly storageClass: StorageClassFacts | undefined;
  readonly profile: StorageProfile | undefined;
}

function copySets(sets: readonly ClaimPropertySet[]): ClaimPropertySet[] {
  return sets.map((s) => ({
    ...(s.accessModes === undefined ? {} : { accessModes: [...s.accessModes] }),
    ...(s.volumeMode === undefined ? {} : { volumeMode: s.volumeMode }),
  }));
}

/** The status a profile should show for its class and its spec. */
export function desiredProfileStatus(
  sc: StorageClassFacts,
  spec: StorageProfile['spec'],
): StorageProfileStatus {
  const status: StorageProfileStatus = { storageClass: sc.name, provisioner: sc.provisioner };
  const fromSpec = spec?.claimPropertySets ?? [];
  const sets = fromSpec.length > 0 ? fromSpec : (KNOWN_PROVISIONERS.get(sc.provisioner) ?? []);
  if (sets.length > 0) status.claimPropertySets = copySets(sets);
  if (spec?.cloneStrategy !== undefined) status.cloneStrategy = spec.cloneStrategy;
  if (spec?.snapshotClass !== undefined) status.snapshotClass = spec.snapshotClass;
  if (spec?.dataImportCronSourceFormat !== undefined)
    status.dataImportCronSourceFormat = spec.dataImportCronSourceFormat;
  return status;
}

/**
 * The merge patch that turns `current` into `desired`: changed fields set, fields no longer
 * wanted set to null; undefined when nothing differs.
 */
export function statusPatch(
  current: StorageProfileStatus | undefined,
  desired: StorageProfileStatus,
): Record<string, unknown> | undefined {
  const patch: Record<string, unknown> = {};
  const cur = (current ?? {}) as Record<string, unknown>;
  const want = desired as Record<string, unknown>;
  for (const key of Object.keys(want)) {
    if (JSON.stringify(cur[key]) !== JSON.stringify(want[key])) patch[key] = want[key];
  }
  for (const key of Object.keys(cur)) {
    if (!(key in want) && cur[key] !== undefined && cur[key] !== null) patch[key] = null;
  }
  return Object.keys(patch).length === 0 ? undefined : patch;
}

/** Decides what one class name's profile needs: create, a status update, deletion, or nothing. */
export function decideStorageProfile(input: StorageProfileInput): Action[] {
  const { name, storageClass, profile } = input;
  if (storageClass === undefined) {
    if (profile === undefined || profile.metadata.deletionTimestamp !== undefined) return [];
    return [{ kind: 'deleteStorageProfile', name }];
  }
  const desired = desiredProfileStatus(storageClass, profile?.spec);
  if (profile === undefined) {
    return [
      {
        kind: 'createStorageProfile',
        profile: {
          apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
          kind: 'StorageProfile',
          metadata: { name },
          spec: {},
        },
      },
      { kind: 'patchStorageProfileStatus', name, status: statusPatch(undefined, desired) ?? {} },
    ];
  }
  const patch = statusPatch(profile.status, desired);
  return patch === undefined ? [] : [{ kind: 'patchStorageProfileStatus', name, status: patch }];
}
