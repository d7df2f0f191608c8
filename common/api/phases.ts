// SPDX-License-Identifier: Apache-2.0
/**
 * The status vocabulary KubeVirt and CDI users read (CDI `types.go`, `conditions.go`): DataVolume
 * phases, condition types and reasons, and the pod phases copied to PVC annotations. Const
 * objects plus unions, so values are checked at compile time and printable at run time.
 */

/** `DataVolume.status.phase` values this project reports (a subset of CDI's list). */
export const DataVolumePhases = {
  Unset: '',
  Pending: 'Pending',
  PVCBound: 'PVCBound',
  ImportScheduled: 'ImportScheduled',
  ImportInProgress: 'ImportInProgress',
  CloneScheduled: 'CloneScheduled',
  CloneInProgress: 'CloneInProgress',
  /** Smart clone: the temporary snapshot of the source is being taken. */
  SnapshotForSmartCloneInProgress: 'SnapshotForSmartCloneInProgress',
  /** The target is being restored from a snapshot (smart clone or `source.snapshot`). */
  CloneFromSnapshotSourceInProgress: 'CloneFromSnapshotSourceInProgress',
  CSICloneInProgress: 'CSICloneInProgress',
  /** A storage-side clone's target grows to the size asked for. */
  ExpansionInProgress: 'ExpansionInProgress',
  UploadScheduled: 'UploadScheduled',
  UploadReady: 'UploadReady',
  WaitForFirstConsumer: 'WaitForFirstConsumer',
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Unknown: 'Unknown',
} as const;
/** One of {@link DataVolumePhases}. */
export type DataVolumePhase = (typeof DataVolumePhases)[keyof typeof DataVolumePhases];

/** DataVolume condition types. */
export const ConditionTypes = { Ready: 'Ready', Bound: 'Bound', Running: 'Running' } as const;
/** One of {@link ConditionTypes}. */
export type ConditionType = (typeof ConditionTypes)[keyof typeof ConditionTypes];

/** Kubernetes condition status values. */
export const ConditionStatuses = { True: 'True', False: 'False', Unknown: 'Unknown' } as const;
/** One of {@link ConditionStatuses}. */
export type ConditionStatus = (typeof ConditionStatuses)[keyof typeof ConditionStatuses];

/** Condition reasons CDI uses (plus `InvalidSpec`, ours: validation without a webhook). */
export const ConditionReasons = {
  Bound: 'Bound',
  Pending: 'Pending',
  ClaimLost: 'ClaimLost',
  NotFound: 'NotFound',
  CreatingScratchSpace: 'CreatingScratchSpace',
  /** Running=True: CDI's reason text for a running pod. */
  PodRunning: 'Pod is running',
  Unschedulable: 'Unschedulable',
  Completed: 'Completed',
  Error: 'Error',
  ImagePullFailed: 'ImagePullFailed',
  ScratchSpaceRequired: 'Scratch space required',
  ChecksumError: 'ChecksumError',
  ErrStartingPod: 'ErrStartingPod',
  ErrExceededQuota: 'ErrExceededQuota',
  TransferRunning: 'TransferRunning',
  /** Ours: the spec is invalid (what CDI's admission webhook would have rejected). */
  InvalidSpec: 'InvalidSpec',
  /** The clone source (claim or DataSource) does not exist or is not ready yet. */
  CloneWithoutSource: 'CloneWithoutSource',
  /** The clone cannot be done as asked (target smaller than the source). */
  CloneValidationFailed: 'CloneValidationFailed',
} as const;
/** One of {@link ConditionReasons}. */
export type ConditionReason = (typeof ConditionReasons)[keyof typeof ConditionReasons];

/** Condition messages CDI writes verbatim. */
export const ConditionMessages = {
  NoPvc: 'No PVC found',
  ClaimLost: 'Claim Lost',
  CreatingScratchSpace: 'Creating scratch space',
  ImportComplete: 'Import Complete',
  UploadComplete: 'Upload Complete',
  Unschedulable: 'Importer pod cannot be scheduled',
  TooSmall: 'DataVolume too small to contain image',
  ScratchRequired: 'scratch space required and none found',
  CloneComplete: 'Clone Complete',
  /** CDI's prefix of a clone validation failure. */
  CloneValidationFailed: "The clone doesn't meet the validation requirements",
  /** CDI's clone size check. */
  CloneTooSmall: 'target resources requests storage size is smaller than the source',
} as const;

/** Pod phases (core/v1), as copied to the PVC annotation `storage.pod.phase`. */
export const PodPhases = {
  Pending: 'Pending',
  Running: 'Running',
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Unknown: 'Unknown',
} as const;
/** One of {@link PodPhases}. */
export type PodPhase = (typeof PodPhases)[keyof typeof PodPhases];

/** Event reasons the controller emits (CDI's names). */
export const EventReasons = {
  Pending: 'Pending',
  Bound: 'Bound',
  ImportScheduled: 'ImportScheduled',
  ImportInProgress: 'ImportInProgress',
  ImportSucceeded: 'ImportSucceeded',
  ImportFailed: 'ImportFailed',
  CloneScheduled: 'CloneScheduled',
  CloneInProgress: 'CloneInProgress',
  CloneSucceeded: 'CloneSucceeded',
  SnapshotForSmartCloneInProgress: 'SnapshotForSmartCloneInProgress',
  CloneFromSnapshotSourceInProgress: 'CloneFromSnapshotSourceInProgress',
  CSICloneInProgress: 'CSICloneInProgress',
  ExpansionInProgress: 'ExpansionInProgress',
  CloneFailed: 'CloneFailed',
  CloneWithoutSource: 'CloneWithoutSource',
  CloneValidationFailed: 'CloneValidationFailed',
  /** A pod other than ours mounts the clone source: the clone waits (CDI's event). */
  CloneSourceInUse: 'CloneSourceInUse',
  UploadScheduled: 'UploadScheduled',
  UploadReady: 'UploadReady',
  UploadSucceeded: 'UploadSucceeded',
  UploadFailed: 'UploadFailed',
  ErrUploadFailed: 'ErrUploadFailed',
  ErrImportFailed: 'ErrImportFailed',
  ImportTargetInUse: 'ImportTargetInUse',
  ErrClaimLost: 'ErrClaimLost',
  ErrResourceExists: 'ErrResourceExists',
  ErrResourceMarkedForDeletion: 'ErrResourceMarkedForDeletion',
  ErrStartingPod: 'ErrStartingPod',
  ErrExceededQuota: 'ErrExceededQuota',
  ErrClaimNotValid: 'ErrClaimNotValid',
  WaitForFirstConsumer: 'WaitForFirstConsumer',
  /** Ours: the DataVolume spec failed validation. */
  ErrInvalidSpec: 'ErrInvalidSpec',
} as const;
/** One of {@link EventReasons}. */
export type EventReason = (typeof EventReasons)[keyof typeof EventReasons];
