// SPDX-License-Identifier: Apache-2.0
/**
 * Where a clone DataVolume reads from: `spec.source.pvc` or `spec.source.snapshot` (namespace
 * defaulting to the DataVolume's), or `spec.sourceRef` to a DataSource whose source names the
 * claim or the snapshot, directly or through the DataSource it refers to (CDI
 * `ResolveDataSourceChain`, one hop). The reconcile resolves it from its caches through the
 * lookups and hands the result to the pure `decide()`; the DataVolume's spec is never rewritten.
 */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { DataSource, DataVolume } from '../../common/api/datavolume.js';
import type { ClaimRef } from '../builders/claim.js';
import { referencedDataSource, resolveDataSource } from '../datasource/decide.js';

/** A clone's source as the reconcile found it. */
export type ResolvedCloneSource =
  | {
      readonly kind: 'claim';
      /** The source claim's namespace and name. */
      readonly ref: ClaimRef;
      /** The claim from the cache; undefined when missing. */
      readonly pvc: V1PersistentVolumeClaim | undefined;
    }
  | {
      /** A VolumeSnapshot (`source.snapshot`, or a DataSource naming one). */
      readonly kind: 'snapshot';
      readonly ref: ClaimRef;
    }
  | {
      /** The DataSource is missing or names no claim: the DataVolume waits with `message`. */
      readonly kind: 'unresolved';
      readonly message: string;
    };

/** Cache reads the resolution needs. */
export interface CloneLookups {
  pvc(namespace: string, name: string): V1PersistentVolumeClaim | undefined;
  dataSource(namespace: string, name: string): DataSource | undefined;
}

/** The DataSource a DataVolume's `sourceRef` names, if any. */
export function dataSourceRefOf(dv: DataVolume): ClaimRef | undefined {
  const ref = dv.spec?.sourceRef;
  if (ref === undefined || ref.kind !== 'DataSource' || (ref.name ?? '') === '') return undefined;
  const namespace =
    ref.namespace === undefined || ref.namespace === ''
      ? (dv.metadata.namespace ?? '')
      : ref.namespace;
  return { namespace, name: ref.name ?? '' };
}

function refIn(
  ref: { namespace?: string; name?: string } | undefined,
  namespace: string,
): ClaimRef | undefined {
  if (ref === undefined || (ref.name ?? '') === '') return undefined;
  const ns = ref.namespace === undefined || ref.namespace === '' ? namespace : ref.namespace;
  return { namespace: ns, name: ref.name ?? '' };
}

/** The claim a DataSource points at itself, if it points at one. */
export function dataSourceClaim(ds: DataSource): ClaimRef | undefined {
  return refIn(ds.spec?.source?.pvc, ds.metadata.namespace ?? '');
}

function claim(ref: ClaimRef, lookups: CloneLookups): ResolvedCloneSource {
  return { kind: 'claim', ref, pvc: lookups.pvc(ref.namespace, ref.name) };
}

/** Resolves a clone DataVolume's source; undefined for DataVolumes that do not clone. */
export function resolveCloneSource(
  dv: DataVolume,
  lookups: CloneLookups,
): ResolvedCloneSource | undefined {
  const dvNamespace = dv.metadata.namespace ?? '';
  const pvc = refIn(dv.spec?.source?.pvc, dvNamespace);
  if (pvc !== undefined) return claim(pvc, lookups);
  const snapshot = refIn(dv.spec?.source?.snapshot, dvNamespace);
  if (snapshot !== undefined) return { kind: 'snapshot', ref: snapshot };
  const dsRef = dataSourceRefOf(dv);
  if (dsRef === undefined) return undefined;
  const ds = lookups.dataSource(dsRef.namespace, dsRef.name);
  if (ds === undefined) {
    return { kind: 'unresolved', message: `The source DataSource ${dsRef.name} doesn't exist` };
  }
  const hop = referencedDataSource(ds);
  const referenced = hop === undefined ? undefined : lookups.dataSource(hop.namespace, hop.name);
  const resolved = resolveDataSource(ds, referenced);
  if (resolved.kind === 'error') return { kind: 'unresolved', message: resolved.message };
  const target = refIn(resolved.source.pvc, resolved.namespace);
  if (target !== undefined) return claim(target, lookups);
  const snap = refIn(resolved.source.snapshot, resolved.namespace);
  if (snap !== undefined) return { kind: 'snapshot', ref: snap };
  return {
    kind: 'unresolved',
    message: `DataSource ${dsRef.namespace}/${dsRef.name} has no pvc or snapshot source`,
  };
}
