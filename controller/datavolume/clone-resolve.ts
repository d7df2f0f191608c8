// SPDX-License-Identifier: Apache-2.0
/**
 * Where a clone DataVolume reads from: `spec.source.pvc` (namespace defaulting to the
 * DataVolume's), or `spec.sourceRef` to a DataSource whose `spec.source.pvc` names the claim (CDI
 * `getSourceRefOp`, depth one). The reconcile resolves it from its caches through the lookups and
 * hands the result to the pure `decide()`; the DataVolume's spec is never rewritten.
 */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { DataSource, DataVolume } from '../../common/api/datavolume.js';
import type { ClaimRef } from '../builders/claim.js';

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

/** The claim a DataSource points at, if it points at one. */
export function dataSourceClaim(ds: DataSource): ClaimRef | undefined {
  const pvc = ds.spec?.source?.pvc;
  if (pvc === undefined || (pvc.name ?? '') === '') return undefined;
  const namespace =
    pvc.namespace === undefined || pvc.namespace === ''
      ? (ds.metadata.namespace ?? '')
      : pvc.namespace;
  return { namespace, name: pvc.name ?? '' };
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
  const pvc = dv.spec?.source?.pvc;
  if (pvc !== undefined) {
    const namespace =
      pvc.namespace === undefined || pvc.namespace === '' ? dvNamespace : pvc.namespace;
    return claim({ namespace, name: pvc.name ?? '' }, lookups);
  }
  const dsRef = dataSourceRefOf(dv);
  if (dsRef === undefined) return undefined;
  const ds = lookups.dataSource(dsRef.namespace, dsRef.name);
  if (ds === undefined) {
    return { kind: 'unresolved', message: `The source DataSource ${dsRef.name} doesn't exist` };
  }
  const target = dataSourceClaim(ds);
  if (target === undefined) {
    return {
      kind: 'unresolved',
      message: `DataSource ${dsRef.namespace}/${dsRef.name} has no pvc source (only pvc sources are supported)`,
    };
  }
  return claim(target, lookups);
}
