// SPDX-License-Identifier: Apache-2.0
/**
 * TypeScript shape of CDI's DataImportCron (`cdi.kubevirt.io/v1beta1`, CDI `types.go`): a cron
 * schedule, a DataVolume template with a registry source, the DataSource it manages, and how many
 * imports to keep. The kind has no status subresource: annotations and status change together.
 */
import type {
  DataVolumeCondition,
  DataVolumeSourcePvc,
  DataVolumeSpec,
  ObjectMeta,
} from './datavolume.js';

/** Plural resource name. */
export const DATA_IMPORT_CRONS = 'dataimportcrons';

/** `spec.garbageCollect` values. */
export const GarbageCollect = { Outdated: 'Outdated', Never: 'Never' } as const;
/** `spec.retentionPolicy` values. */
export const RetentionPolicy = { All: 'All', None: 'None' } as const;
/** `status.sourceFormat` values (StorageProfile `dataImportCronSourceFormat`). */
export const SourceFormat = { Pvc: 'pvc', Snapshot: 'snapshot' } as const;

/** The DataImportCron condition types. */
export const CronConditions = { UpToDate: 'UpToDate', Progressing: 'Progressing' } as const;

/** CDI's imports to keep when `spec.importsToKeep` is unset. */
export const DEFAULT_IMPORTS_TO_KEEP = 3;

/** `spec.template`: a DataVolume without status. */
export interface DataVolumeTemplate {
  metadata?: ObjectMeta;
  spec?: DataVolumeSpec;
}

/** `DataImportCron.spec`. */
export interface DataImportCronSpec {
  template?: DataVolumeTemplate;
  /** Standard five-field cron; empty disables polling. */
  schedule?: string;
  garbageCollect?: string;
  importsToKeep?: number;
  managedDataSource?: string;
  retentionPolicy?: string;
  serviceAccountName?: string;
}

/** One import (CDI's JSON names are capitalised). */
export interface ImportStatus {
  DataVolumeName: string;
  Digest?: string;
}

/** `DataImportCron.status`. */
export interface DataImportCronStatus {
  currentImports?: ImportStatus[];
  lastImportedPVC?: DataVolumeSourcePvc;
  lastExecutionTimestamp?: string;
  lastImportTimestamp?: string;
  sourceFormat?: string;
  conditions?: DataVolumeCondition[];
}

/** A DataImportCron as the API returns it. */
export interface DataImportCron {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: DataImportCronSpec;
  status?: DataImportCronStatus;
}
