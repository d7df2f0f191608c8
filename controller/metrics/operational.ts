// SPDX-License-Identifier: Apache-2.0
/**
 * CDI's operational metrics computed from the controller's caches (pure). CDI derives the
 * `*_pods_high_restart` gauges with Prometheus recording rules over kube-state-metrics; the
 * controller already watches its own pods, so it serves them directly and a cluster without
 * kube-state-metrics still gets them.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { ForeignAnnotations, Labels } from '../../common/contract.js';
import type { DataVolume, StorageProfile } from '../../common/api/datavolume.js';

/** A pod counts as failing once any container restarted more than this (CDI `UnusualRestartCountThreshold`). */
export const UNUSUAL_RESTART_COUNT_THRESHOLD = 3;

/** Label names of `kubevirt_cdi_storageprofile_info`, in CDI's order. */
export const STORAGE_PROFILE_LABELS = [
  'storageclass',
  'provisioner',
  'complete',
  'default',
  'virtdefault',
  'rwx',
  'smartclone',
  'degraded',
] as const;

export type StorageProfileLabels = Record<(typeof STORAGE_PROFILE_LABELS)[number], string>;

/** What a StorageClass contributes to the metrics. */
export interface MetricsStorageClass {
  readonly name: string;
  readonly annotations: Readonly<Record<string, string>>;
}

/** The cached objects the gauges are computed from. */
export interface OperationalInput {
  readonly dataVolumes: readonly DataVolume[];
  readonly pods: readonly V1Pod[];
  readonly storageClasses: readonly MetricsStorageClass[];
  readonly storageProfiles: readonly StorageProfile[];
}

/** The gauge values. */
export interface OperationalMetrics {
  readonly dataVolumePending: number;
  readonly importPodsHighRestart: number;
  readonly uploadPodsHighRestart: number;
  readonly clonePodsHighRestart: number;
  readonly storageProfiles: readonly StorageProfileLabels[];
}

/** Volume of an importer pod that copies a source claim (a host-assisted clone). */
const CLONE_SOURCE_VOLUME = 'cdi-clone-source';

type PodKind = 'import' | 'upload' | 'clone' | undefined;

function podKind(pod: V1Pod): PodKind {
  const component = pod.metadata?.labels?.[Labels.Component];
  if (component === 'cdi-upload-server') return 'upload';
  if (component !== 'importer') return undefined;
  const clones = (pod.spec?.volumes ?? []).some((v) => v.name === CLONE_SOURCE_VOLUME);
  return clones ? 'clone' : 'import';
}

function restartsUnusually(pod: V1Pod): boolean {
  return (pod.status?.containerStatuses ?? []).some(
    (c) => c.restartCount > UNUSUAL_RESTART_COUNT_THRESHOLD,
  );
}

/** True when the DataVolume names no storage class, so it waits for a default one. */
function usesDefaultStorageClass(dv: DataVolume): boolean {
  const named = dv.spec?.storage?.storageClassName ?? dv.spec?.pvc?.storageClassName;
  return named === undefined || named === '';
}

/**
 * CDI `updatePendingDataVolumesGauge`: DataVolumes on the default class whose phase is still
 * Pending or unset.
 */
function pendingDataVolumes(dataVolumes: readonly DataVolume[]): number {
  return dataVolumes.filter((dv) => {
    const phase = dv.status?.phase ?? '';
    return usesDefaultStorageClass(dv) && (phase === '' || phase === 'Pending');
  }).length;
}

/** CDI `isIncomplete`: no sets, or a set without access modes or volume mode. */
function isComplete(profile: StorageProfile): boolean {
  const sets = profile.status?.claimPropertySets ?? [];
  return (
    sets.length > 0 &&
    sets.every((s) => (s.accessModes ?? []).length > 0 && s.volumeMode !== undefined)
  );
}

function hasRwx(profile: StorageProfile): boolean {
  return (profile.status?.claimPropertySets ?? []).some((s) =>
    (s.accessModes ?? []).includes('ReadWriteMany'),
  );
}

/**
 * Smart (storage-side) cloning: CDI also probes CSIDrivers and VolumeSnapshotClasses; the
 * controller does not watch those, so only an explicit csi-clone or snapshot strategy counts.
 */
function hasSmartClone(profile: StorageProfile): boolean {
  const strategy = profile.status?.cloneStrategy;
  return strategy === 'csi-clone' || strategy === 'snapshot';
}

/** One `kubevirt_cdi_storageprofile_info` series per profile with a resolved class (CDI `computeMetrics`). */
function storageProfileSeries(input: OperationalInput): StorageProfileLabels[] {
  const out: StorageProfileLabels[] = [];
  for (const p of input.storageProfiles) {
    const storageclass = p.status?.storageClass;
    const provisioner = p.status?.provisioner;
    if (storageclass === undefined || provisioner === undefined) continue;
    const annotations = input.storageClasses.find((c) => c.name === storageclass)?.annotations;
    const rwx = hasRwx(p);
    const smartclone = hasSmartClone(p);
    out.push({
      storageclass,
      provisioner,
      complete: String(isComplete(p)),
      default: String(annotations?.[ForeignAnnotations.DefaultStorageClass] === 'true'),
      virtdefault: String(annotations?.[ForeignAnnotations.DefaultVirtStorageClass] === 'true'),
      rwx: String(rwx),
      smartclone: String(smartclone),
      degraded: String(!rwx || !smartclone),
    });
  }
  return out;
}

/** Computes every operational gauge from the caches. */
export function computeOperationalMetrics(input: OperationalInput): OperationalMetrics {
  const highRestart = { import: 0, upload: 0, clone: 0 };
  for (const pod of input.pods) {
    const kind = podKind(pod);
    if (kind !== undefined && restartsUnusually(pod)) highRestart[kind]++;
  }
  return {
    dataVolumePending: pendingDataVolumes(input.dataVolumes),
    importPodsHighRestart: highRestart.import,
    uploadPodsHighRestart: highRestart.upload,
    clonePodsHighRestart: highRestart.clone,
    storageProfiles: storageProfileSeries(input),
  };
}
