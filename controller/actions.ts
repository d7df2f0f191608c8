// SPDX-License-Identifier: Apache-2.0
/**
 * What a pure `decide()` asks the executor to do (CONTRIBUTING.md). Each action is idempotent on
 * its own: creates tolerate AlreadyExists, deletes tolerate NotFound, patches are merge patches of
 * the fields the controller owns. So a reconcile interrupted at any point converges when re-run.
 */
import type { V1PersistentVolumeClaim, V1Pod, V1Service } from '@kubernetes/client-node';
import type { DataSource, DataVolumeStatus, StorageProfile } from '../common/api/datavolume.js';
import type { VolumeSnapshot } from './kube.js';

/** The object an event is about. */
export interface EventTarget {
  readonly kind: 'DataVolume' | 'PersistentVolumeClaim' | 'DataImportCron' | 'DataSource' | 'CDI';
  readonly apiVersion: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** An Event to record. */
export interface EventAction {
  readonly kind: 'event';
  readonly target: EventTarget;
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

/** Merge-patch a claim's annotations (null removes) and labels. */
export interface PatchPvcAction {
  readonly kind: 'patchPvc';
  readonly namespace: string;
  readonly name: string;
  readonly annotations: Readonly<Record<string, string | null>>;
  readonly labels?: Readonly<Record<string, string>>;
}

/** Create a claim (the DataVolume's target). */
export interface CreatePvcAction {
  readonly kind: 'createPvc';
  readonly pvc: V1PersistentVolumeClaim;
}

/**
 * Create an importer pod, after re-reading the claim from the API to be sure no newer state
 * (success, fatal error) forbids it; with `scratch`, also the scratch claim owned by the pod.
 */
export interface CreatePodAction {
  readonly kind: 'createPod';
  readonly pod: V1Pod;
  readonly scratch: boolean;
}

/**
 * Create the upload server pod of a claim, after re-reading the claim from the API to be sure it
 * is still an upload target that has not completed.
 */
export interface CreateUploadPodAction {
  readonly kind: 'createUploadPod';
  readonly pod: V1Pod;
}

/**
 * Make sure the upload server's TLS Secret holds a current certificate for its Service, issuing one
 * from the controller's upload CA when it does not. The claim is the Secret's owner.
 */
export interface EnsureUploadSecretAction {
  readonly kind: 'ensureUploadSecret';
  readonly pvc: V1PersistentVolumeClaim;
}

/**
 * Create a network clone's source pod in the source namespace, after its Secret: a client
 * certificate named `clientName` from the upload client CA, and the upload servers' CA bundle.
 */
export interface CreateCloneSourcePodAction {
  readonly kind: 'createCloneSourcePod';
  readonly pod: V1Pod;
  readonly target: V1PersistentVolumeClaim;
  readonly clientName: string;
}

/** Merge-patch a DataVolume's annotations (the extended clone token). */
export interface PatchDvAnnotationsAction {
  readonly kind: 'patchDvAnnotations';
  readonly namespace: string;
  readonly name: string;
  readonly annotations: Readonly<Record<string, string>>;
}

/** Create a Service (AlreadyExists is fine). */
export interface CreateServiceAction {
  readonly kind: 'createService';
  readonly service: V1Service;
}

/** Delete a Service, a Secret, a VolumeSnapshot or a temporary claim (NotFound is fine). */
export interface DeleteObjectAction {
  readonly kind: 'deleteService' | 'deleteSecret' | 'deleteVolumeSnapshot' | 'deletePvc';
  readonly namespace: string;
  readonly name: string;
}

/** Create a VolumeSnapshot (a smart clone's temporary snapshot; AlreadyExists is fine). */
export interface CreateVolumeSnapshotAction {
  readonly kind: 'createVolumeSnapshot';
  readonly snapshot: VolumeSnapshot;
}

/** Raise a claim's storage request (a smart clone's target grows to the size asked for). */
export interface ResizePvcAction {
  readonly kind: 'resizePvc';
  readonly namespace: string;
  readonly name: string;
  readonly storage: string;
}

/** Delete a pod (foreground is not needed: its scratch claim is garbage collected). */
export interface DeletePodAction {
  readonly kind: 'deletePod';
  readonly namespace: string;
  readonly name: string;
}

/** Replace a DataVolume's status (through the status subresource). */
export interface UpdateDvStatusAction {
  readonly kind: 'updateDvStatus';
  readonly namespace: string;
  readonly name: string;
  readonly status: DataVolumeStatus;
}

/** Replace a DataSource's status (through the status subresource). */
export interface UpdateDataSourceStatusAction {
  readonly kind: 'updateDataSourceStatus';
  readonly namespace: string;
  readonly name: string;
  readonly status: NonNullable<DataSource['status']>;
}

/** Create a StorageProfile (AlreadyExists is fine). */
export interface CreateStorageProfileAction {
  readonly kind: 'createStorageProfile';
  readonly profile: StorageProfile;
}

/** Merge-patch a StorageProfile's status (null removes a field); a missing profile is ignored. */
export interface PatchStorageProfileStatusAction {
  readonly kind: 'patchStorageProfileStatus';
  readonly name: string;
  readonly status: Readonly<Record<string, unknown>>;
}

/** Delete a StorageProfile (NotFound is fine). */
export interface DeleteStorageProfileAction {
  readonly kind: 'deleteStorageProfile';
  readonly name: string;
}

/** Reconcile this key again after a delay even if nothing changes (progress polling). */
export interface RequeueAction {
  readonly kind: 'requeue';
  readonly afterMs: number;
}

/** Any action. */
export type Action =
  | EventAction
  | PatchPvcAction
  | CreatePvcAction
  | CreatePodAction
  | CreateUploadPodAction
  | EnsureUploadSecretAction
  | CreateCloneSourcePodAction
  | PatchDvAnnotationsAction
  | CreateServiceAction
  | DeleteObjectAction
  | CreateVolumeSnapshotAction
  | ResizePvcAction
  | DeletePodAction
  | UpdateDvStatusAction
  | UpdateDataSourceStatusAction
  | CreateStorageProfileAction
  | PatchStorageProfileStatusAction
  | DeleteStorageProfileAction
  | RequeueAction;
