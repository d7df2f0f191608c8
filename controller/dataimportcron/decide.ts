// SPDX-License-Identifier: Apache-2.0
/**
 * The DataImportCron reconcile's pure core (CDI `dataimportcron-controller.go` `update`). Given
 * the cron, the result of this reconcile's poll (if one was due), its current import's DataVolume
 * and claim, its managed DataSource and its import claims, it returns the actions that:
 * - record the polled digest (`sourceDesiredDigest`), the poll time and the next one;
 * - create the import DataVolume `<managedDataSource>-<12 hex of the digest>` when the digest is
 *   new, unless a claim of that name exists (that digest was imported already: reused, never
 *   imported again);
 * - on success, point the managed DataSource at the new claim and delete imports beyond
 *   `importsToKeep` (oldest `lastUseTime` first; the claim in use is never deleted);
 * - with the StorageProfile's `dataImportCronSourceFormat: snapshot`, take a VolumeSnapshot of
 *   each import (named like it, owned by its claim so it goes with it) and point the DataSource
 *   at the snapshot once it is ready;
 * - set `status` and the `UpToDate` / `Progressing` conditions with CDI's reasons.
 * A failed poll changes no import and no DataSource: it sets `UpToDate` False (`PollFailed`) and
 * a Warning event, and the next schedule tries again.
 */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { Annotations, Labels } from '../../common/contract.js';
import { errorMessage } from '../../common/errors.js';
import {
  CronConditions,
  DEFAULT_IMPORTS_TO_KEEP,
  GarbageCollect,
  RetentionPolicy,
  SourceFormat,
  type DataImportCron,
  type DataImportCronStatus,
  type ImportStatus,
} from '../../common/api/dataimportcron.js';
import {
  CDI_GROUP,
  CDI_VERSION,
  type DataSource,
  type DataVolume,
} from '../../common/api/datavolume.js';
import { ConditionStatuses, type ConditionStatus } from '../../common/api/phases.js';
import { joinName } from '../builders/naming.js';
import { isPopulated } from '../pvc/clone-source.js';
import { mergeConditions, type ConditionValue } from '../datavolume/conditions.js';
import type { CronAction } from './actions.js';
import { nextRun, parseCron } from './cron.js';

/** CDI's condition reasons of a DataImportCron (`dataimportcron-conditions.go`), plus ours. */
export const CronReasons = {
  NoDigest: 'NoDigest',
  NoImport: 'NoImport',
  NotAuthorized: 'NotAuthorized',
  Outdated: 'Outdated',
  Scheduled: 'ImportScheduled',
  InProgress: 'ImportProgressing',
  UpToDate: 'UpToDate',
  /** Ours: the last poll could not read the source's digest. */
  PollFailed: 'PollFailed',
  /** Ours: `spec.schedule` is not a cron expression (CDI's webhook refuses it). */
  InvalidSchedule: 'InvalidSchedule',
} as const;

/** CDI's event when the managed DataSource belongs to another cron. */
export const ERR_DATA_SOURCE_ALREADY_MANAGED = 'ErrDataSourceAlreadyManaged';

/** Hex digits of the digest in an import's name (CDI `digestDvNameSuffixLength`). */
const DIGEST_NAME_LENGTH = 12;
const SHA256_PREFIX = 'sha256:';

/** The outcome of this reconcile's poll. */
export type PollResult =
  | { readonly kind: 'digest'; readonly digest: string }
  | { readonly kind: 'failed'; readonly message: string };

/** Inputs of {@link decideCron}. */
export interface CronInput {
  readonly cron: DataImportCron;
  readonly now: Date;
  /** Present when a poll was due and ran in this reconcile. */
  readonly poll?: PollResult | undefined;
  /** The DataVolume of `status.currentImports[0]`, from the cache. */
  readonly dv: DataVolume | undefined;
  /** The claim of `status.currentImports[0]`, from the cache. */
  readonly pvc: V1PersistentVolumeClaim | undefined;
  /** The managed DataSource, from the cache. */
  readonly dataSource: DataSource | undefined;
  /** Name of another cron that manages the DataSource already (then this one does nothing). */
  readonly managedByOther?: string | undefined;
  /** The claims labelled with this cron's name in its namespace. */
  readonly importClaims: readonly V1PersistentVolumeClaim[];
  /** The import's StorageProfile `dataImportCronSourceFormat` (default `pvc`). */
  readonly sourceFormat?: string | undefined;
  /** With the snapshot format: the snapshot of the current import (undefined: none yet). */
  readonly snapshot?: { readonly ready: boolean } | undefined;
  /** With the snapshot format: the VolumeSnapshotClass to take it with. */
  readonly snapshotClass?: string | undefined;
}

/** A claim or snapshot the DataSource points at. */
interface SourceRef {
  readonly namespace: string;
  readonly name: string;
}

/** How often a cron re-reads its import's snapshot while it is not ready (not watched). */
export const SNAPSHOT_POLL_MS = 2000;

function snapshotFormat(input: CronInput): boolean {
  return input.sourceFormat === SourceFormat.Snapshot;
}

/** True when the DataSource may point at the current import (its snapshot is ready, if wanted). */
function importUsable(d: Draft): boolean {
  return !snapshotFormat(d.input) || d.input.snapshot?.ready === true;
}

/** RFC 3339 without fractional seconds, as Kubernetes writes timestamps. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The import DataVolume's name for a digest (CDI `createDvName`); undefined for other digests. */
export function importName(dataSource: string, digest: string): string | undefined {
  if (!digest.startsWith(SHA256_PREFIX)) return undefined;
  const hex = digest.slice(SHA256_PREFIX.length, SHA256_PREFIX.length + DIGEST_NAME_LENGTH);
  return hex.length === DIGEST_NAME_LENGTH ? joinName(dataSource, hex) : undefined;
}

/** The template's registry URL, if the template imports from a registry URL. */
export function registryUrlOf(cron: DataImportCron): string | undefined {
  const url = cron.spec?.template?.spec?.source?.registry?.url;
  return url === undefined || url === '' ? undefined : url;
}

/** True when this reconcile should poll: a schedule, a URL, and the next poll time has come. */
export function isPollDue(cron: DataImportCron, now: Date): boolean {
  if ((cron.spec?.schedule ?? '') === '' || registryUrlOf(cron) === undefined) return false;
  const next = cron.metadata.annotations?.[Annotations.NextCronTime];
  if (next === undefined || next === '') return true;
  const t = Date.parse(next);
  return Number.isNaN(t) || t <= now.getTime();
}

/** The `<namespace>/<name>` key of the cron that labels an object, if any. */
export function cronLabelOf(obj: { metadata?: { labels?: Record<string, string> } }): string {
  return obj.metadata?.labels?.[Labels.DataImportCron] ?? '';
}

function cond(
  type: string,
  status: ConditionStatus,
  message: string,
  reason: string,
): ConditionValue {
  return { type, status, message, reason };
}

/** Working state of one decision. */
interface Draft {
  readonly input: CronInput;
  readonly namespace: string;
  readonly name: string;
  readonly nowText: string;
  readonly annotations: Record<string, string | null>;
  readonly conditions: ConditionValue[];
  readonly actions: CronAction[];
  status: DataImportCronStatus;
  imports: ImportStatus[];
}

function annotation(d: Draft, key: string): string {
  const set = d.annotations[key];
  if (set !== undefined) return set ?? '';
  return d.input.cron.metadata.annotations?.[key] ?? '';
}

function setAnnotation(d: Draft, key: string, value: string): void {
  if (d.input.cron.metadata.annotations?.[key] !== value) d.annotations[key] = value;
}

function event(d: Draft, type: 'Normal' | 'Warning', reason: string, message: string): void {
  const c = d.input.cron;
  d.actions.push({
    kind: 'event',
    target: {
      kind: 'DataImportCron',
      apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
      namespace: d.namespace,
      name: d.name,
      uid: c.metadata.uid ?? '',
    },
    type,
    reason,
    message,
  });
}

/** Records the poll's outcome and the next poll time; returns the poll failure, if any. */
function applyPoll(d: Draft): string | undefined {
  const { cron, poll, now } = d.input;
  const schedule = cron.spec?.schedule ?? '';
  if (schedule === '' || registryUrlOf(cron) === undefined) return undefined;
  let next: Date | undefined;
  try {
    next = nextRun(parseCron(schedule), now);
  } catch (err) {
    const message = errorMessage(err);
    event(d, 'Warning', CronReasons.InvalidSchedule, message);
    return message;
  }
  if (poll !== undefined || annotation(d, Annotations.NextCronTime) === '') {
    if (next !== undefined) setAnnotation(d, Annotations.NextCronTime, rfc3339(next));
  }
  if (poll === undefined) return undefined;
  setAnnotation(d, Annotations.LastCronTime, d.nowText);
  if (poll.kind === 'digest') {
    setAnnotation(d, Annotations.SourceDesiredDigest, poll.digest);
    return undefined;
  }
  const message = `Failed to poll the source digest of ${registryUrlOf(cron) ?? ''}: ${poll.message}`;
  event(d, 'Warning', CronReasons.PollFailed, message);
  return message;
}

function cronLabels(d: Draft): Record<string, string> {
  const labels: Record<string, string> = { [Labels.DataImportCron]: d.name };
  if (d.input.cron.spec?.retentionPolicy === RetentionPolicy.None)
    labels[Labels.DataImportCronCleanup] = 'true';
  return labels;
}

/** The state of the current import: true when it succeeded. */
function observeImport(d: Draft): boolean {
  const { dv, pvc } = d.input;
  const P = CronConditions.Progressing;
  if (dv !== undefined) {
    const phase = dv.status?.phase ?? '';
    if (phase === 'Succeeded') return true;
    if (phase === 'ImportScheduled') {
      d.conditions.push(
        cond(P, ConditionStatuses.False, 'Import is scheduled', CronReasons.Scheduled),
      );
    } else if (phase === 'ImportInProgress') {
      d.conditions.push(
        cond(P, ConditionStatuses.True, 'Import is progressing', CronReasons.InProgress),
      );
    } else {
      d.conditions.push(
        cond(P, ConditionStatuses.False, `Import DataVolume phase ${phase}`, phase),
      );
    }
    return false;
  }
  if (pvc !== undefined && pvc.status?.phase === 'Bound') return true;
  if (d.imports.length > 0) d.imports = d.imports.slice(1);
  d.conditions.push(cond(P, ConditionStatuses.False, 'No current import', CronReasons.NoImport));
  return false;
}

/** The current import succeeded: it becomes `lastImportedPVC` and is marked as the newest. */
function onSuccess(d: Draft): void {
  const current = d.imports[0];
  if (current === undefined) return;
  const last = d.status.lastImportedPVC;
  if (last?.name !== current.DataVolumeName || last.namespace !== d.namespace) {
    d.status = {
      ...d.status,
      lastImportedPVC: { namespace: d.namespace, name: current.DataVolumeName },
      lastImportTimestamp: d.nowText,
    };
  }
  const pvc = d.input.pvc;
  const labels = cronLabels(d);
  const missingLabel = Object.entries(labels).some(([k, v]) => pvc?.metadata?.labels?.[k] !== v);
  const stale =
    pvc?.metadata?.annotations?.[Annotations.LastUseTime] === undefined ||
    last?.name !== current.DataVolumeName;
  if (pvc !== undefined && (missingLabel || stale)) {
    d.actions.push({
      kind: 'patchPvc',
      namespace: d.namespace,
      name: pvc.metadata?.name ?? '',
      annotations: stale ? { [Annotations.LastUseTime]: new Date(d.input.now).toISOString() } : {},
      labels,
    });
  }
  d.conditions.push(
    cond(
      CronConditions.Progressing,
      ConditionStatuses.False,
      'No current import',
      CronReasons.NoImport,
    ),
  );
  if (snapshotFormat(d.input)) snapshotImport(d, pvc);
  garbageCollect(d, current.DataVolumeName);
}

/** Takes the snapshot of a finished import (CDI `handleSnapshot`), and waits for it. */
function snapshotImport(d: Draft, pvc: V1PersistentVolumeClaim | undefined): void {
  const { snapshot, snapshotClass } = d.input;
  if (pvc === undefined || snapshot?.ready === true) return;
  d.actions.push({ kind: 'requeue', afterMs: SNAPSHOT_POLL_MS });
  if (snapshot !== undefined) return;
  const name = pvc.metadata?.name ?? '';
  d.actions.push({
    kind: 'createVolumeSnapshot',
    snapshot: {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshot',
      metadata: {
        name,
        namespace: d.namespace,
        labels: cronLabels(d),
        annotations: { [Annotations.LastUseTime]: new Date(d.input.now).toISOString() },
        // The snapshot goes with its import when garbage collection deletes that.
        ownerReferences: [
          {
            apiVersion: 'v1',
            kind: 'PersistentVolumeClaim',
            name,
            uid: pvc.metadata?.uid ?? '',
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        source: { persistentVolumeClaimName: name },
        ...(snapshotClass === undefined ? {} : { volumeSnapshotClassName: snapshotClass }),
      },
    },
  });
}

/**
 * Deletes completed imports beyond `importsToKeep`, most recently used kept first. Never the one
 * in use (`keep`), nor one newer than it, nor an import still in progress: a reconcile that reads
 * a cron a moment old must not delete what a newer one just made.
 */
function garbageCollect(d: Draft, keep: string): void {
  const spec = d.input.cron.spec;
  if ((spec?.garbageCollect ?? GarbageCollect.Outdated) !== GarbageCollect.Outdated) return;
  const max =
    spec?.importsToKeep !== undefined && spec.importsToKeep >= 0
      ? spec.importsToKeep
      : DEFAULT_IMPORTS_TO_KEEP;
  const lastUse = (p: V1PersistentVolumeClaim): string =>
    p.metadata?.annotations?.[Annotations.LastUseTime] ??
    (p.metadata?.name === keep ? '\uffff' : '');
  const claims = d.input.importClaims
    .filter((p) => p.metadata?.deletionTimestamp === undefined && isPopulated(p))
    .sort((a, b) => lastUse(b).localeCompare(lastUse(a)));
  const kept = claims.findIndex((p) => p.metadata?.name === keep);
  claims.forEach((p, i) => {
    if (i >= Math.max(max, 1) && i > kept) {
      d.actions.push({
        kind: 'deleteImport',
        namespace: d.namespace,
        name: p.metadata?.name ?? '',
      });
    }
  });
}

/** Creates the managed DataSource, or points it at the last import; not when another owns it. */
function updateDataSource(d: Draft): void {
  const { dataSource, cron } = d.input;
  const dsName = cron.spec?.managedDataSource ?? '';
  const last = d.status.lastImportedPVC;
  const ref =
    last === undefined
      ? undefined
      : { namespace: last.namespace ?? d.namespace, name: last.name ?? '' };
  const kind = snapshotFormat(d.input) ? 'snapshot' : 'pvc';
  const source: { pvc?: SourceRef; snapshot?: SourceRef } =
    ref === undefined || !importUsable(d) ? {} : { [kind]: ref };
  const labels = cronLabels(d);
  if (dataSource === undefined) {
    d.actions.push({
      kind: 'createDataSource',
      ds: {
        apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
        kind: 'DataSource',
        metadata: { name: dsName, namespace: d.namespace, labels },
        spec: { source },
      },
    });
    return;
  }
  // A DataSource someone else made (no label) is not taken over, as in CDI.
  if (cronLabelOf(dataSource) !== d.name) return;
  const labelsDiffer = Object.entries(labels).some(
    ([k, v]) => dataSource.metadata.labels?.[k] !== v,
  );
  const sourceDiffers =
    source[kind] !== undefined &&
    JSON.stringify(dataSource.spec?.source?.[kind] ?? {}) !== JSON.stringify(source[kind]);
  if (!labelsDiffer && !sourceDiffers) return;
  d.actions.push({
    kind: 'patchDataSource',
    namespace: d.namespace,
    name: dsName,
    ...(labelsDiffer ? { labels } : {}),
    ...(sourceDiffers
      ? { source: { pvc: null, snapshot: null, dataSource: null, ...source } }
      : {}),
  });
}

/** The DataVolume that imports `digest` (CDI `newSourceDataVolume`). */
function importDataVolume(d: Draft, name: string, digest: string): DataVolume {
  const { cron } = d.input;
  const template = cron.spec?.template ?? {};
  const spec = structuredClone(template.spec ?? {});
  const url = registryUrlOf(cron) ?? '';
  if (spec.source?.registry !== undefined) spec.source.registry.url = `${untagged(url)}@${digest}`;
  return {
    apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
    kind: 'DataVolume',
    metadata: {
      name,
      namespace: d.namespace,
      labels: { ...template.metadata?.labels, ...cronLabels(d) },
      annotations: {
        ...template.metadata?.annotations,
        [Annotations.BindImmediate]: 'true',
        [Annotations.LastUseTime]: new Date(d.input.now).toISOString(),
      },
    },
    spec,
  };
}

/** `docker://host/repo:tag` without its tag (and without an old digest). */
export function untagged(url: string): string {
  const at = url.indexOf('@');
  const base = at >= 0 ? url.slice(0, at) : url;
  const lastSlash = base.lastIndexOf('/');
  const colon = base.lastIndexOf(':');
  return colon > lastSlash && lastSlash >= 0 ? base.slice(0, colon) : base;
}

/** Starts the import of the desired digest, or reuses the claim that already holds it. */
function startImport(d: Draft, digest: string): void {
  const name = importName(d.input.cron.spec?.managedDataSource ?? '', digest);
  if (name === undefined) return;
  const existing = d.input.importClaims.find((p) => p.metadata?.name === name);
  d.imports = [{ DataVolumeName: name, Digest: digest }];
  if (existing !== undefined && existing.metadata?.deletionTimestamp === undefined) return;
  d.actions.push({ kind: 'createDataVolume', dv: importDataVolume(d, name, digest) });
}

/** The UpToDate condition and the import to start, from the desired digest. */
function reconcileDigest(d: Draft, succeeded: boolean, pollFailure: string | undefined): void {
  const U = CronConditions.UpToDate;
  const desired = annotation(d, Annotations.SourceDesiredDigest);
  const current = d.imports[0];
  const updated = desired !== '' && (current === undefined || desired !== current.Digest);
  if (updated) {
    d.conditions.push(
      cond(
        U,
        ConditionStatuses.False,
        'Source digest updated since last import',
        CronReasons.Outdated,
      ),
    );
    if (failed(d.input.dv)) {
      d.actions.push({
        kind: 'deleteImport',
        namespace: d.namespace,
        name: d.input.dv?.metadata.name ?? '',
      });
      d.imports = [];
    }
    if (succeeded || d.imports.length === 0) startImport(d, desired);
  } else if (succeeded) {
    const format = snapshotFormat(d.input) ? SourceFormat.Snapshot : SourceFormat.Pvc;
    d.status = { ...d.status, sourceFormat: format };
    d.conditions.push(
      importUsable(d)
        ? cond(U, ConditionStatuses.True, 'Latest import is up to date', CronReasons.UpToDate)
        : cond(
            U,
            ConditionStatuses.False,
            'Snapshot of imported data is progressing',
            CronReasons.InProgress,
          ),
    );
  } else if (d.imports.length > 0) {
    d.conditions.push(
      cond(U, ConditionStatuses.False, 'Import is progressing', CronReasons.InProgress),
    );
  } else {
    d.conditions.push(cond(U, ConditionStatuses.False, 'No source digest', CronReasons.NoDigest));
  }
  keepPollFailure(d, pollFailure);
}

/** A poll failure stands until the next poll: it overrides UpToDate (never the imports). */
function keepPollFailure(d: Draft, pollFailure: string | undefined): void {
  const U = CronConditions.UpToDate;
  const old = d.input.cron.status?.conditions?.find((c) => c.type === U);
  const message =
    pollFailure ??
    (d.input.poll === undefined && old?.reason === CronReasons.PollFailed
      ? old.message
      : undefined);
  if (message === undefined) return;
  const i = d.conditions.findIndex((c) => c.type === U);
  const reason = message.startsWith('invalid cron schedule')
    ? CronReasons.InvalidSchedule
    : CronReasons.PollFailed;
  const value = cond(U, ConditionStatuses.False, message, reason);
  if (i >= 0) d.conditions.splice(i, 1, value);
  else d.conditions.push(value);
}

/** An import that failed for good (CDI `deleteErroneousDataVolume`): Running False with an error. */
function failed(dv: DataVolume | undefined): boolean {
  const running = dv?.status?.conditions?.find((c) => c.type === 'Running');
  return (
    running?.status === 'False' &&
    (running.reason === 'Error' || running.reason === 'ImagePullFailed')
  );
}

/** Decides one DataImportCron reconcile. */
export function decideCron(input: CronInput): CronAction[] {
  const { cron } = input;
  if (cron.metadata.deletionTimestamp !== undefined) return [];
  const d: Draft = {
    input,
    namespace: cron.metadata.namespace ?? '',
    name: cron.metadata.name ?? '',
    nowText: rfc3339(input.now),
    annotations: {},
    conditions: [],
    actions: [],
    status: { ...cron.status },
    imports: [...(cron.status?.currentImports ?? [])],
  };
  if (input.managedByOther !== undefined) {
    const ds = cron.spec?.managedDataSource ?? '';
    event(
      d,
      'Warning',
      ERR_DATA_SOURCE_ALREADY_MANAGED,
      `DataSource ${ds} is already managed by DataImportCron ${input.managedByOther}`,
    );
    return d.actions;
  }
  const succeeded = observeImport(d);
  if (succeeded) onSuccess(d);
  updateDataSource(d);
  const pollFailure = applyPoll(d);
  reconcileDigest(d, succeeded, pollFailure);
  finishStatus(d);
  return d.actions;
}

/** Adds the cron's own update when its annotations or status changed. */
function finishStatus(d: Draft): void {
  const { cron } = d.input;
  const lastCron = annotation(d, Annotations.LastCronTime);
  const status: DataImportCronStatus = {
    ...d.status,
    ...(d.imports.length > 0 ? { currentImports: d.imports } : {}),
    ...(lastCron === '' ? {} : { lastExecutionTimestamp: lastCron }),
    conditions: mergeConditions(cron.status?.conditions, d.conditions, d.nowText),
  };
  if (d.imports.length === 0) delete status.currentImports;
  const clear = Object.keys(cron.status ?? {}).filter((k) => !(k in status));
  const statusChanged = JSON.stringify(cron.status ?? {}) !== JSON.stringify(status);
  if (!statusChanged && Object.keys(d.annotations).length === 0) return;
  // First: a write based on a stale read fails here (409) before any other effect.
  d.actions.unshift({
    kind: 'updateCron',
    namespace: d.namespace,
    name: d.name,
    resourceVersion: cron.metadata.resourceVersion ?? '',
    annotations: d.annotations,
    status,
    clear,
  });
}

/** When the next poll is due, for the requeue; undefined without a schedule. */
export function nextPollDelayMs(cron: DataImportCron, now: Date): number | undefined {
  const schedule = cron.spec?.schedule ?? '';
  if (schedule === '' || registryUrlOf(cron) === undefined) return undefined;
  try {
    const next = nextRun(parseCron(schedule), now);
    return next === undefined ? undefined : Math.max(0, next.getTime() - now.getTime());
  } catch {
    return undefined;
  }
}
