// SPDX-License-Identifier: Apache-2.0
/**
 * TypeScript shapes of the CDI API objects this project serves (group `cdi.kubevirt.io`,
 * versions v1beta1 and v1alpha1, which share these fields): DataVolume and CDIConfig. Field names
 * are CDI's JSON names (`types.go`). Plain data, no Kubernetes client: both the controller and
 * tests import it. Everything read from the API is untrusted, hence the optional fields.
 */
import type { ConditionStatus, DataVolumePhase } from './phases.js';

/** API group of every CDI kind. */
export const CDI_GROUP = 'cdi.kubevirt.io';
/** The served, stored version. */
export const CDI_VERSION = 'v1beta1';
/** The older version whose manifests are accepted unchanged. */
export const CDI_VERSION_ALPHA = 'v1alpha1';
/** Plural resource names. */
export const CdiResources = {
  DataVolumes: 'datavolumes',
  CdiConfigs: 'cdiconfigs',
  DataSources: 'datasources',
  StorageProfiles: 'storageprofiles',
} as const;
/** Name of the cluster-scoped CDIConfig singleton. */
export const CDI_CONFIG_NAME = 'config';

/** The metadata fields the controller reads and writes. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  /** RFC 3339 text or a Date, depending on which client decoded it. */
  deletionTimestamp?: string | Date;
  creationTimestamp?: string | Date;
  finalizers?: string[];
}

/** A Kubernetes owner reference. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** A reference to an object by name (`secretRef`, `certConfigMap` are plain strings in CDI). */
export interface DataVolumeSourceHttp {
  url?: string;
  secretRef?: string;
  certConfigMap?: string;
  extraHeaders?: string[];
  secretExtraHeaders?: string[];
  checksum?: string;
  insecureSkipVerify?: boolean;
}

/** S3 source: an endpoint URL `http(s)://host/bucket/key` or `s3://bucket/key`. */
export interface DataVolumeSourceS3 {
  url?: string;
  secretRef?: string;
  certConfigMap?: string;
}

/** Registry (container disk) source. */
export interface DataVolumeSourceRegistry {
  url?: string;
  imageStream?: string;
  pullMethod?: string;
  secretRef?: string;
  certConfigMap?: string;
  platform?: { architecture?: string };
}

/**
 * GCS source: `gs://bucket/object` or an `http(s)://host/bucket/object` URL; `secretRef` names a
 * Secret whose `credentials.json` is a service-account key (none: anonymous).
 */
export interface DataVolumeSourceGcs {
  url?: string;
  secretRef?: string;
}

/** A PVC to clone from (`namespace` defaults to the DataVolume's; another namespace is refused). */
export interface DataVolumeSourcePvc {
  namespace?: string;
  name?: string;
}

/** `spec.source`: exactly one member is set. */
export interface DataVolumeSource {
  http?: DataVolumeSourceHttp;
  s3?: DataVolumeSourceS3;
  gcs?: DataVolumeSourceGcs;
  registry?: DataVolumeSourceRegistry;
  blank?: Record<string, never>;
  upload?: Record<string, never>;
  pvc?: DataVolumeSourcePvc;
  snapshot?: DataVolumeSourcePvc;
  imageio?: Record<string, unknown>;
  vddk?: Record<string, unknown>;
}

/** Resource requirements (quantities as text). */
export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

/** A label selector. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** A typed local object reference (`dataSource`, `dataSourceRef`). */
export interface TypedObjectReference {
  apiGroup?: string;
  kind: string;
  name: string;
  namespace?: string;
}

/** `spec.pvc` (core PersistentVolumeClaimSpec) and `spec.storage` (CDI StorageSpec). */
export interface ClaimSpec {
  accessModes?: string[];
  selector?: LabelSelector;
  resources?: ResourceRequirements;
  volumeName?: string;
  storageClassName?: string;
  volumeMode?: string;
  dataSource?: TypedObjectReference;
  dataSourceRef?: TypedObjectReference;
}

/** `spec.sourceRef`: only `kind: DataSource` is served. */
export interface DataVolumeSourceRef {
  kind?: string;
  namespace?: string;
  name?: string;
}

/** `DataVolume.spec`. */
export interface DataVolumeSpec {
  source?: DataVolumeSource;
  sourceRef?: DataVolumeSourceRef;
  pvc?: ClaimSpec;
  storage?: ClaimSpec;
  priorityClassName?: string;
  serviceAccountName?: string;
  contentType?: string;
  preallocation?: boolean;
  checkpoints?: { previous?: string; current?: string }[];
  finalCheckpoint?: boolean;
}

/** One DataVolume condition. */
export interface DataVolumeCondition {
  type: string;
  status: ConditionStatus;
  lastTransitionTime?: string;
  lastHeartbeatTime?: string;
  reason?: string;
  message?: string;
}

/** `DataVolume.status`. */
export interface DataVolumeStatus {
  claimName?: string;
  phase?: DataVolumePhase;
  progress?: string;
  restartCount?: number;
  conditions?: DataVolumeCondition[];
}

/** A DataVolume as the API returns it. */
export interface DataVolume {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: DataVolumeSpec;
  status?: DataVolumeStatus;
}

/** `CDIConfig.spec.filesystemOverhead`: percent strings such as `"0.06"`. */
export interface FilesystemOverhead {
  global?: string;
  storageClass?: Record<string, string>;
}

/** `CDIConfig.spec.importProxy`. */
export interface ImportProxy {
  HTTPProxy?: string;
  HTTPSProxy?: string;
  noProxy?: string;
  trustedCAProxy?: string;
}

/** `CDIConfig.spec`. */
export interface CdiConfigSpec {
  uploadProxyURLOverride?: string;
  importProxy?: ImportProxy;
  scratchSpaceStorageClass?: string;
  podResourceRequirements?: ResourceRequirements;
  featureGates?: string[];
  filesystemOverhead?: FilesystemOverhead;
  preallocation?: boolean;
  insecureRegistries?: string[];
}

/** `CDIConfig.status`: the effective values the controller uses. */
export interface CdiConfigStatus {
  uploadProxyURL?: string;
  importProxy?: ImportProxy;
  scratchSpaceStorageClass?: string;
  defaultPodResourceRequirements?: ResourceRequirements;
  filesystemOverhead?: FilesystemOverhead;
  preallocation?: boolean;
}

/** The cluster-scoped CDIConfig singleton named `config`. */
export interface CdiConfig {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: CdiConfigSpec;
  status?: CdiConfigStatus;
}

/** `DataSource.spec.source` (and `status.source`): where clones of it come from. */
export interface DataSourceSource {
  pvc?: DataVolumeSourcePvc;
  snapshot?: DataVolumeSourcePvc;
  dataSource?: { namespace?: string; name?: string };
}

/** A DataSource (`cdi.kubevirt.io/v1beta1`): a named pointer to a golden image to clone. */
export interface DataSource {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { source?: DataSourceSource };
  status?: { source?: DataSourceSource; conditions?: DataVolumeCondition[] };
}

/** One access-mode/volume-mode combination a storage class supports (CDI `ClaimPropertySet`). */
export interface ClaimPropertySet {
  accessModes?: string[];
  volumeMode?: string;
}

/** `StorageProfile.spec`: the admin's overrides. */
export interface StorageProfileSpec {
  claimPropertySets?: ClaimPropertySet[];
  cloneStrategy?: string;
  dataImportCronSourceFormat?: string;
  snapshotClass?: string;
  minimumSupportedPvcSize?: string;
}

/** `StorageProfile.status`: what CDI uses for claims of the class. */
export interface StorageProfileStatus {
  storageClass?: string;
  provisioner?: string;
  claimPropertySets?: ClaimPropertySet[];
  cloneStrategy?: string;
  dataImportCronSourceFormat?: string;
  snapshotClass?: string;
  minimumSupportedPvcSize?: string;
}

/** A cluster-scoped StorageProfile, named after its StorageClass. */
export interface StorageProfile {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: StorageProfileSpec;
  status?: StorageProfileStatus;
}
