// SPDX-License-Identifier: Apache-2.0
/**
 * The DataSource reconcile's pure core (CDI `datasource-controller.go`): `status.source` mirrors
 * `spec.source`, and the `Ready` condition says whether a clone of it can start now: True when
 * its claim exists and holds its final content, False with CDI's reason and message otherwise.
 * Snapshot sources are not served (reason `NoSource`).
 */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { DataSource, DataSourceSource } from '../../common/api/datavolume.js';
import { ConditionStatuses } from '../../common/api/phases.js';
import type { Action } from '../actions.js';
import { isPopulated } from '../pvc/clone-source.js';
import { mergeConditions, type ConditionValue } from '../datavolume/conditions.js';
import { derivePhase } from '../datavolume/phase.js';
import { dataSourceClaim } from '../datavolume/clone-resolve.js';

/** The DataSource condition type. */
export const DATA_SOURCE_READY = 'Ready';

/** Inputs of {@link decideDataSource}. */
export interface DataSourceInput {
  readonly ds: DataSource;
  /** The claim `spec.source.pvc` names, from the cache (undefined when missing or none named). */
  readonly pvc: V1PersistentVolumeClaim | undefined;
  /** The time to stamp on changed conditions (RFC 3339). */
  readonly now: string;
}

/** The Ready condition of a DataSource, in CDI's words. */
export function readyCondition(
  ds: DataSource,
  pvc: V1PersistentVolumeClaim | undefined,
): ConditionValue {
  const type = DATA_SOURCE_READY;
  if (dataSourceClaim(ds) === undefined) {
    return {
      type,
      status: ConditionStatuses.False,
      reason: 'NoSource',
      message: 'No source PVC set',
    };
  }
  if (pvc === undefined || pvc.metadata?.deletionTimestamp !== undefined) {
    return { type, status: ConditionStatuses.False, reason: 'NotFound', message: 'PVC not found' };
  }
  if (isPopulated(pvc)) {
    return {
      type,
      status: ConditionStatuses.True,
      reason: 'Ready',
      message: 'DataSource is ready to be consumed',
    };
  }
  // CDI names the phase of the DataVolume that fills the claim; ours follows from the claim.
  const phase = derivePhase({ pvc, waitForFirstConsumer: false });
  return {
    type,
    status: ConditionStatuses.False,
    reason: phase,
    message: `Import DataVolume phase ${phase}`,
  };
}

function sameSource(a: DataSourceSource | undefined, b: DataSourceSource | undefined): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b ?? {});
}

/** Decides the status of one DataSource: one status update when anything changed, else nothing. */
export function decideDataSource(input: DataSourceInput): Action[] {
  const { ds } = input;
  if (ds.metadata.deletionTimestamp !== undefined) return [];
  const old = ds.status;
  const source = ds.spec?.source ?? {};
  // CDI starts the conditions afresh when the source changes.
  const existing = sameSource(old?.source, source) ? old?.conditions : undefined;
  const conditions = mergeConditions(existing, [readyCondition(ds, input.pvc)], input.now);
  const status = { ...old, source, conditions };
  if (JSON.stringify(old ?? {}) === JSON.stringify(status)) return [];
  return [
    {
      kind: 'updateDataSourceStatus',
      namespace: ds.metadata.namespace ?? '',
      name: ds.metadata.name ?? '',
      status,
    },
  ];
}
