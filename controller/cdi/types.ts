// SPDX-License-Identifier: Apache-2.0
/**
 * The `CDI` resource (CDI `v1beta1.CDI`): how the cluster's CDI install is configured. Plain
 * JSON shapes with CDI's field names.
 */
import type { V1Affinity, V1Toleration } from '@kubernetes/client-node';
import type { CdiConfigSpec, ObjectMeta } from '../../common/api/datavolume.js';
import type { CdiCertConfig } from '../../common/cert-config.js';

/** Plural of the CDI resource. */
export const CDI_PLURAL = 'cdis';

/** Where pods are placed (CDI `sdkapi.NodePlacement`). */
export interface NodePlacement {
  nodeSelector?: Record<string, string>;
  affinity?: V1Affinity;
  tolerations?: V1Toleration[];
}

/** `spec.infra`: placement of CDI's own Deployments, and their replica counts. */
export interface InfraPlacement extends NodePlacement {
  apiServerReplicas?: number;
  deploymentReplicas?: number;
  uploadProxyReplicas?: number;
}

export type { CdiCertConfig, CertConfig } from '../../common/cert-config.js';

/** CDI's uninstall strategies. */
export const UninstallStrategies = {
  RemoveWorkloads: 'RemoveWorkloads',
  BlockUninstallIfWorkloadsExist: 'BlockUninstallIfWorkloadsExist',
} as const;

/** `CDI.spec`. */
export interface CdiSpec {
  config?: CdiConfigSpec;
  imagePullPolicy?: string;
  uninstallStrategy?: string;
  infra?: InfraPlacement;
  workload?: NodePlacement;
  certConfig?: CdiCertConfig;
  priorityClass?: string;
  cloneStrategyOverride?: string;
  customizeComponents?: Record<string, unknown>;
}

/** One status condition (`conditions.Condition` of the operator SDK). */
export interface CdiCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastHeartbeatTime?: string;
}

/** `CDI.status`. */
export interface CdiStatus {
  phase?: string;
  conditions?: CdiCondition[];
  operatorVersion?: string;
  targetVersion?: string;
  observedVersion?: string;
}

/** A cluster-scoped CDI resource. */
export interface Cdi {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: CdiSpec;
  status?: CdiStatus;
}
