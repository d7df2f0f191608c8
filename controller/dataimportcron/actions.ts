// SPDX-License-Identifier: Apache-2.0
/**
 * What the DataImportCron `decide()` asks for, beyond the shared actions: its own update
 * (annotations and status in one merge patch, guarded by resourceVersion, since the kind has no
 * status subresource), import DataVolumes created and deleted, the managed DataSource created or
 * re-pointed, and old import claims deleted.
 */
import type { DataSource, DataVolume } from '../../common/api/datavolume.js';
import type { DataImportCronStatus } from '../../common/api/dataimportcron.js';
import type { Action } from '../actions.js';

/** Merge-patch the cron's annotations (null removes) and replace the status fields given. */
export interface UpdateCronAction {
  readonly kind: 'updateCron';
  readonly namespace: string;
  readonly name: string;
  /** The cron's resourceVersion as read: a newer write makes this one fail and retry. */
  readonly resourceVersion: string;
  readonly annotations: Readonly<Record<string, string | null>>;
  readonly status: DataImportCronStatus;
  /** Status fields to remove (set to null in the patch). */
  readonly clear: readonly string[];
}

/** Create an import DataVolume (AlreadyExists is fine). */
export interface CreateDataVolumeAction {
  readonly kind: 'createDataVolume';
  readonly dv: DataVolume;
}

/** Delete a DataVolume, or its claim when the DataVolume is gone (CDI `deleteDvPvc`). */
export interface DeleteImportAction {
  readonly kind: 'deleteImport';
  readonly namespace: string;
  readonly name: string;
}

/** Create the managed DataSource (AlreadyExists is fine). */
export interface CreateDataSourceAction {
  readonly kind: 'createDataSource';
  readonly ds: DataSource;
}

/** Merge-patch a DataSource's labels and `spec.source` (null members remove). */
export interface PatchDataSourceAction {
  readonly kind: 'patchDataSource';
  readonly namespace: string;
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly source?: Readonly<Record<string, unknown>>;
}

/** Delete a DataSource (NotFound is fine). */
export interface DeleteDataSourceAction {
  readonly kind: 'deleteDataSource';
  readonly namespace: string;
  readonly name: string;
}

/** Any action of the DataImportCron reconcile. */
export type CronAction =
  | Action
  | UpdateCronAction
  | CreateDataVolumeAction
  | DeleteImportAction
  | CreateDataSourceAction
  | PatchDataSourceAction
  | DeleteDataSourceAction;
