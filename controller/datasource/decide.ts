// SPDX-License-Identifier: Apache-2.0
/**
 * The DataSource reconcile's pure core (CDI `datasource-controller.go`). A DataSource points at a
 * claim (`pvc`), a VolumeSnapshot (`snapshot`), or another DataSource in its namespace
 * (`dataSource`, CDI 1.60+, one hop at most: the one referred to must point at a claim or a
 * snapshot). `status.source` is the resolved source while it is usable and empty otherwise, and
 * the `Ready` condition says whether a clone of it can start now, with CDI's reason and message
 * for each case.
 */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { DataSource, DataSourceSource } from '../../common/api/datavolume.js';
import { ConditionStatuses } from '../../common/api/phases.js';
import type { Action } from '../actions.js';
import { isPopulated } from '../pvc/clone-source.js';
import { mergeConditions, type ConditionValue } from '../datavolume/conditions.js';
import { derivePhase } from '../datavolume/phase.js';

/** The DataSource condition type. */
export const DATA_SOURCE_READY = 'Ready';

/** CDI's Ready reasons of a DataSource. */
export const DataSourceReasons = {
  Ready: 'Ready',
  NoSource: 'NoSource',
  NotFound: 'NotFound',
  SnapshotNotReady: 'SnapshotNotReady',
  MaxReferenceDepthReached: 'MaxReferenceDepthReached',
  SelfReference: 'SelfReference',
  CrossNamespaceReference: 'CrossNamespaceReference',
} as const;

/** What the decision reads of a VolumeSnapshot. */
export interface SnapshotView {
  readonly metadata?: { readonly deletionTimestamp?: unknown };
  readonly status?: { readonly readyToUse?: boolean };
}

/** Inputs of {@link decideDataSource}. */
export interface DataSourceInput {
  readonly ds: DataSource;
  /** The DataSource `spec.source.dataSource` names (undefined when missing or none named). */
  readonly referenced?: DataSource | undefined;
  /** The claim the resolved source names, from the cache. */
  readonly pvc: V1PersistentVolumeClaim | undefined;
  /** The VolumeSnapshot the resolved source names, read from the API. */
  readonly snapshot?: SnapshotView | undefined;
  /** The time to stamp on changed conditions (RFC 3339). */
  readonly now: string;
}

/** A reference resolved to a namespace and a name. */
export interface SourceRef {
  readonly namespace: string;
  readonly name: string;
}

function refIn(
  ref: { namespace?: string; name?: string } | undefined,
  namespace: string,
): SourceRef | undefined {
  if (ref === undefined || (ref.name ?? '') === '') return undefined;
  const ns = ref.namespace === undefined || ref.namespace === '' ? namespace : ref.namespace;
  return { namespace: ns, name: ref.name ?? '' };
}

/** The DataSource `spec.source.dataSource` names, if any. */
export function referencedDataSource(ds: DataSource): SourceRef | undefined {
  return refIn(ds.spec?.source?.dataSource, ds.metadata.namespace ?? '');
}

/** Where a DataSource's data is: its own source, or the one of the DataSource it refers to. */
export type Resolution =
  | { readonly kind: 'source'; readonly source: DataSourceSource; readonly namespace: string }
  | { readonly kind: 'error'; readonly reason: string; readonly message: string };

/** Follows `spec.source.dataSource` one hop, with CDI's refusals (`ResolveDataSourceChain`). */
export function resolveDataSource(ds: DataSource, referenced: DataSource | undefined): Resolution {
  const namespace = ds.metadata.namespace ?? '';
  const source = ds.spec?.source ?? {};
  const ref = referencedDataSource(ds);
  if (ref === undefined) return { kind: 'source', source, namespace };
  const R = DataSourceReasons;
  if (ref.namespace !== namespace) {
    return {
      kind: 'error',
      reason: R.CrossNamespaceReference,
      message: 'DataSource cannot reference a DataSource in another namespace',
    };
  }
  if (ref.name === ds.metadata.name) {
    return { kind: 'error', reason: R.SelfReference, message: 'DataSource cannot self-reference' };
  }
  if (referenced === undefined) {
    return {
      kind: 'error',
      reason: R.NotFound,
      message: `datasources.cdi.kubevirt.io "${ref.name}" not found`,
    };
  }
  if (referenced.spec?.source?.dataSource !== undefined) {
    return {
      kind: 'error',
      reason: R.MaxReferenceDepthReached,
      message: 'DataSource reference chain exceeds maximum depth of 1',
    };
  }
  return { kind: 'source', source: referenced.spec?.source ?? {}, namespace };
}

/** The claim a resolved source names, if it names one. */
export function resolvedClaim(r: Resolution): SourceRef | undefined {
  return r.kind === 'source' ? refIn(r.source.pvc, r.namespace) : undefined;
}

/** The VolumeSnapshot a resolved source names, if it names one (and no claim). */
export function resolvedSnapshot(r: Resolution): SourceRef | undefined {
  if (r.kind !== 'source' || r.source.pvc !== undefined) return undefined;
  return refIn(r.source.snapshot, r.namespace);
}

function notReady(reason: string, message: string): ConditionValue {
  return { type: DATA_SOURCE_READY, status: ConditionStatuses.False, reason, message };
}

const READY: ConditionValue = {
  type: DATA_SOURCE_READY,
  status: ConditionStatuses.True,
  reason: DataSourceReasons.Ready,
  message: 'DataSource is ready to be consumed',
};

function claimCondition(pvc: V1PersistentVolumeClaim | undefined): ConditionValue {
  if (pvc === undefined || pvc.metadata?.deletionTimestamp !== undefined) {
    return notReady(DataSourceReasons.NotFound, 'PVC not found');
  }
  if (isPopulated(pvc)) return READY;
  // CDI names the phase of the DataVolume that fills the claim; ours follows from the claim.
  const phase = derivePhase({ pvc, waitForFirstConsumer: false });
  return notReady(phase, `Import DataVolume phase ${phase}`);
}

function snapshotCondition(snapshot: SnapshotView | undefined): ConditionValue {
  if (snapshot === undefined || snapshot.metadata?.deletionTimestamp !== undefined) {
    return notReady(DataSourceReasons.NotFound, 'Snapshot not found');
  }
  if (snapshot.status?.readyToUse === true) return READY;
  return notReady(DataSourceReasons.SnapshotNotReady, 'Snapshot phase is not ready');
}

/** The Ready condition of a DataSource, in CDI's words. */
export function readyCondition(input: Omit<DataSourceInput, 'now'>): ConditionValue {
  const r = resolveDataSource(input.ds, input.referenced);
  if (r.kind === 'error') return notReady(r.reason, r.message);
  if (resolvedClaim(r) !== undefined) return claimCondition(input.pvc);
  if (resolvedSnapshot(r) !== undefined) return snapshotCondition(input.snapshot);
  return notReady(DataSourceReasons.NoSource, 'No source PVC set');
}

/** Decides the status of one DataSource: one status update when anything changed, else nothing. */
export function decideDataSource(input: DataSourceInput): Action[] {
  const { ds } = input;
  if (ds.metadata.deletionTimestamp !== undefined) return [];
  const old = ds.status;
  const ready = readyCondition(input);
  const r = resolveDataSource(ds, input.referenced);
  // CDI shows the resolved source only while it can be consumed.
  const source = ready.status === ConditionStatuses.True && r.kind === 'source' ? r.source : {};
  const conditions = mergeConditions(old?.conditions, [ready], input.now);
  const status = { ...old, source, conditions };
  if (JSON.stringify(old ?? {}) === JSON.stringify(status)) return [];
  // A merge patch keeps members it does not name: the ones no longer there are nulled.
  const cleared = { pvc: null, snapshot: null, dataSource: null, ...source };
  return [
    {
      kind: 'updateDataSourceStatus',
      namespace: ds.metadata.namespace ?? '',
      name: ds.metadata.name ?? '',
      status: { ...status, source: cleared as DataSourceSource },
    },
  ];
}
