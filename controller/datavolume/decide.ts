// SPDX-License-Identifier: Apache-2.0
/**
 * The DataVolume reconcile's pure core (CONTRIBUTING.md): from a DataVolume, its claim as the cache
 * shows it and the last scraped progress, decide what to create, which status to write and which
 * events to record. The executor in `reconcile.ts` applies the actions.
 */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { Annotations } from '../../common/contract.js';
import { EXTENDED_CLONE_TOKEN_ANNOTATION } from '../../common/clone-token.js';
import {
  CDI_GROUP,
  CDI_VERSION,
  type DataVolume,
  type DataVolumeCondition,
  type DataVolumeStatus,
} from '../../common/api/datavolume.js';
import {
  ConditionMessages,
  ConditionReasons,
  ConditionStatuses,
  ConditionTypes,
  DataVolumePhases,
  EventReasons,
  PodPhases,
  type DataVolumePhase,
} from '../../common/api/phases.js';
import type { Action, EventAction, EventTarget } from '../actions.js';
import {
  defaultVirtStorageClass,
  resolveStorageClass,
  type CloneProfile,
  type EffectiveConfig,
} from '../config.js';
import { buildTargetPvc, renderClaimSpec } from '../builders/pvc.js';
import {
  annotation,
  claimRefText,
  cloneRequestOf,
  isBlock,
  type ClaimRef,
} from '../builders/claim.js';
import { cloneSizeProblem, claimBytes, sizedSource } from '../builders/clone-size.js';
import {
  askedStrategy,
  chooseSnapshotStrategy,
  chooseStrategy,
  CloneStrategies,
  compatibleSnapshotClass,
  type Fallback,
  type SnapshotClassView,
  type StrategyChoice,
} from './clone-strategy.js';
import {
  buildSmartTarget,
  buildSnapshotRestoreClaim,
  buildTempSnapshot,
  bytesOf,
  isSmartTarget,
  SmartCloneAnnotations,
  smartTargetPhase,
  smartTargetSteps,
  tempSnapshotName,
  type SnapshotInfo,
} from './smart-clone.js';
import { sourceWaitMessage } from '../pvc/clone-source.js';
import type { ResolvedCloneSource } from './clone-resolve.js';
import {
  desiredConditions,
  findCondition,
  mergeConditions,
  type ConditionValue,
} from './conditions.js';
import { derivePhase } from './phase.js';
import { isCloneSpec, validateDataVolume } from '../../common/datavolume/validate.js';

/** Progress shown before any is known. */
export const PROGRESS_NA = 'N/A';
/** Progress shown on success (CDI's exact text). */
export const PROGRESS_DONE = '100.0%';
/** How often a DataVolume in progress is re-read to refresh its progress (CDI: 2 s). */
export const PROGRESS_POLL_MS = 2000;

/** Phases whose progress is polled (the DataVolume is re-read every {@link PROGRESS_POLL_MS}). */
const POLLED_PHASES: ReadonlySet<DataVolumePhase> = new Set([
  DataVolumePhases.ImportScheduled,
  DataVolumePhases.ImportInProgress,
  DataVolumePhases.CloneScheduled,
  DataVolumePhases.CloneInProgress,
  DataVolumePhases.UploadReady,
  // Snapshots are read, not watched: a smart clone re-reads them while it waits.
  DataVolumePhases.SnapshotForSmartCloneInProgress,
  DataVolumePhases.CloneFromSnapshotSourceInProgress,
  DataVolumePhases.CSICloneInProgress,
  DataVolumePhases.ExpansionInProgress,
]);

/** Inputs of {@link decideDataVolume}. */
export interface DataVolumeInput {
  readonly dv: DataVolume;
  /** The claim named like the DataVolume, from the cache. */
  readonly pvc: V1PersistentVolumeClaim | undefined;
  readonly config: EffectiveConfig;
  /** The claim's storage class binds on first consumer. */
  readonly waitForFirstConsumer: boolean;
  /** Progress scraped from the importer just now (`45.67%`), if any. */
  readonly progress?: string;
  /** Why the upload server refused the last upload, scraped with the progress, if it did. */
  readonly uploadRefusal?: string;
  /** The time to stamp on changed conditions (RFC 3339). */
  readonly now: string;
  /** For a clone DataVolume: its source, resolved by the reconcile. */
  readonly cloneSource?: ResolvedCloneSource;
  /**
   * For a clone from another namespace: why its clone token does not allow it (missing,
   * invalid, expired); absent when the token is valid.
   */
  readonly cloneTokenProblem?: string;
  /** An extended clone token to store on the DataVolume (its short token just checked). */
  readonly extendedCloneToken?: string;
  /**
   * For a clone without its target yet: the snapshot it restores from (the `source.snapshot`, or
   * a smart clone's temporary snapshot); undefined when it does not exist.
   */
  readonly snapshot?: SnapshotInfo;
  /** The cluster's VolumeSnapshotClasses (read for a clone without its target yet). */
  readonly snapshotClasses?: readonly SnapshotClassView[];
  /** The claim a snapshot is restored into for a host-assisted copy, from the cache. */
  readonly tempClaim?: V1PersistentVolumeClaim | undefined;
}

/** The event target of a DataVolume. */
export function dvTarget(dv: DataVolume): EventTarget {
  return {
    kind: 'DataVolume',
    apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
    namespace: dv.metadata.namespace ?? '',
    name: dv.metadata.name ?? '',
    uid: dv.metadata.uid ?? '',
  };
}

/** True when the claim is controlled by this DataVolume. */
export function isOwnedBy(pvc: V1PersistentVolumeClaim, dv: DataVolume): boolean {
  return (pvc.metadata?.ownerReferences ?? []).some(
    (o) => o.uid === dv.metadata.uid && o.kind === 'DataVolume',
  );
}

/** A clone's source and target, as CDI's clone event texts name them. */
interface CloneNames {
  readonly source: string;
  readonly target: string;
  /** `pvc` or `snapshot` (CDI's source type in the restore message). */
  readonly kind?: string;
}

function clonePhaseEvent(
  phase: DataVolumePhase,
  names: CloneNames,
): Omit<EventAction, 'target'> | undefined {
  const { source, target } = names;
  const n = (reason: string, message: string): Omit<EventAction, 'target'> => ({
    kind: 'event',
    type: reason === EventReasons.CloneFailed ? 'Warning' : 'Normal',
    reason,
    message,
  });
  switch (phase) {
    case DataVolumePhases.CloneScheduled:
      return n(EventReasons.CloneScheduled, `Cloning from ${source} into ${target} scheduled`);
    case DataVolumePhases.CloneInProgress:
      return n(EventReasons.CloneInProgress, `Cloning from ${source} into ${target} in progress`);
    case DataVolumePhases.SnapshotForSmartCloneInProgress:
      return n(
        EventReasons.SnapshotForSmartCloneInProgress,
        `Creating snapshot for smart-clone is in progress (for pvc ${source})`,
      );
    case DataVolumePhases.CloneFromSnapshotSourceInProgress:
      return n(
        EventReasons.CloneFromSnapshotSourceInProgress,
        `Creating PVC from snapshot source is in progress (for ${names.kind ?? 'pvc'} ${source})`,
      );
    case DataVolumePhases.CSICloneInProgress:
      return n(EventReasons.CSICloneInProgress, `CSI Volume clone in progress (for pvc ${source})`);
    case DataVolumePhases.ExpansionInProgress:
      return n(
        EventReasons.ExpansionInProgress,
        `Expanding PersistentVolumeClaim for DataVolume ${target}`,
      );
    case DataVolumePhases.Succeeded:
      return n(EventReasons.CloneSucceeded, `Successfully cloned from ${source} into ${target}`);
    case DataVolumePhases.Failed:
      return n(EventReasons.CloneFailed, `Cloning from ${source} into ${target} failed`);
    default:
      return undefined;
  }
}

function phaseEvent(
  phase: DataVolumePhase,
  pvcName: string,
  upload: boolean,
  clone: CloneNames | undefined,
): Omit<EventAction, 'target'> | undefined {
  if (clone !== undefined) {
    const e = clonePhaseEvent(phase, clone);
    if (e !== undefined) return e;
  }
  const n = (
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Omit<EventAction, 'target'> => ({
    kind: 'event',
    type,
    reason,
    message,
  });
  switch (phase) {
    case DataVolumePhases.Pending:
      return n('Normal', EventReasons.Pending, `PVC ${pvcName} Pending`);
    case DataVolumePhases.WaitForFirstConsumer:
      return n(
        'Normal',
        EventReasons.WaitForFirstConsumer,
        `PVC ${pvcName} Pending, waiting for a consumer pod`,
      );
    case DataVolumePhases.PVCBound:
      return n('Normal', EventReasons.Bound, `PVC ${pvcName} Bound`);
    case DataVolumePhases.ImportScheduled:
      return n('Normal', EventReasons.ImportScheduled, `Import into ${pvcName} scheduled`);
    case DataVolumePhases.ImportInProgress:
      return n('Normal', EventReasons.ImportInProgress, `Import into ${pvcName} in progress`);
    case DataVolumePhases.UploadScheduled:
      return n('Normal', EventReasons.UploadScheduled, `Upload into ${pvcName} scheduled`);
    case DataVolumePhases.UploadReady:
      return n('Normal', EventReasons.UploadReady, `Upload into ${pvcName} ready`);
    case DataVolumePhases.Succeeded:
      return upload
        ? n('Normal', EventReasons.UploadSucceeded, `Successfully uploaded into ${pvcName}`)
        : n('Normal', EventReasons.ImportSucceeded, `Successfully imported into PVC ${pvcName}`);
    case DataVolumePhases.Failed:
      return n('Warning', EventReasons.ImportFailed, `Failed to import into PVC ${pvcName}`);
    default:
      return undefined;
  }
}

function progressFor(
  phase: DataVolumePhase,
  previous: string | undefined,
  scraped: string | undefined,
): string {
  if (phase === DataVolumePhases.Succeeded) return PROGRESS_DONE;
  // CDI leaves uploads at N/A; ours report the share of the image received, scraped from the
  // upload server like an importer's progress.
  const transferring =
    phase === DataVolumePhases.ImportInProgress ||
    phase === DataVolumePhases.CloneInProgress ||
    phase === DataVolumePhases.UploadReady;
  if (transferring && scraped !== undefined) return scraped;
  return previous === undefined || previous === '' ? PROGRESS_NA : previous;
}

function sameStatus(a: DataVolumeStatus | undefined, b: DataVolumeStatus): boolean {
  return JSON.stringify(normalise(a)) === JSON.stringify(normalise(b));
}

function normalise(s: DataVolumeStatus | undefined): unknown {
  if (s === undefined) return {};
  return {
    claimName: s.claimName,
    phase: s.phase ?? '',
    progress: s.progress,
    restartCount: s.restartCount ?? 0,
    conditions: (s.conditions ?? []).map((c) => [
      c.type,
      c.status,
      c.reason ?? '',
      c.message ?? '',
      c.lastTransitionTime,
      c.lastHeartbeatTime,
    ]),
  };
}

/** Decides the next steps of one DataVolume. */
export function decideDataVolume(input: DataVolumeInput): Action[] {
  const { dv } = input;
  if (dv.metadata.deletionTimestamp !== undefined) return [];
  const name = dv.metadata.name ?? '';
  const target = dvTarget(dv);
  const old = dv.status;
  const actions: Action[] = [];
  const problems = validateDataVolume(dv);
  const step = targetStep(input, problems);
  if (input.extendedCloneToken !== undefined)
    actions.push({
      kind: 'patchDvAnnotations',
      namespace: dv.metadata.namespace ?? '',
      name,
      annotations: { [EXTENDED_CLONE_TOKEN_ANNOTATION]: input.extendedCloneToken },
    });
  actions.push(...(step.actions ?? []));
  if (step.create !== undefined) {
    // No status yet: the claim's add event re-queues the DataVolume at once, and that reconcile
    // writes the first status as the claim then is (Pending, bound, scheduled). Writing
    // "Pending, no claim" here would cost a status write and an event per DataVolume for a
    // state that lasts milliseconds.
    actions.push({ kind: 'createPvc', pvc: step.create });
    return actions;
  }
  const { invalid, foreign } = step;
  const pvc = step.notOurs === true ? undefined : input.pvc;
  if (pvc !== undefined && invalid === undefined) {
    actions.push(...smartTargetSteps(pvc), ...tempClaimCleanup(input, pvc));
  }
  const phase = phaseOf(step, pvc, input.waitForFirstConsumer);
  let desired = desiredConditions({
    phase,
    pvc,
    ...(invalid === undefined ? {} : { invalid }),
    ...(input.uploadRefusal === undefined ? {} : { uploadRefusal: input.uploadRefusal }),
  });
  if (foreign !== undefined)
    desired = desired.map((c) => (c.type === ConditionTypes.Running ? foreign : c));
  const conditions = mergeConditions(old?.conditions, desired, input.now);
  const upload = pvc?.metadata?.annotations?.[Annotations.UploadTarget] !== undefined;
  const restarts = Number(pvc?.metadata?.annotations?.[Annotations.PodRestarts] ?? '0');
  const status: DataVolumeStatus = {
    ...old,
    phase,
    progress: progressFor(phase, old?.progress, input.progress),
    restartCount: Number.isFinite(restarts) ? restarts : 0,
    conditions,
  };
  if (pvc !== undefined) status.claimName = pvc.metadata?.name ?? name;
  if (!sameStatus(old, status)) {
    actions.push({ kind: 'updateDvStatus', namespace: dv.metadata.namespace ?? '', name, status });
  }
  const clone = cloneNamesOf(pvc, `${dv.metadata.namespace ?? ''}/${name}`) ?? step.names;
  actions.push(
    ...events({ target, oldStatus: old, phase, conditions, invalid, pvcName: name, upload, clone }),
  );
  if (POLLED_PHASES.has(phase)) {
    actions.push({ kind: 'requeue', afterMs: PROGRESS_POLL_MS });
  }
  return actions;
}

/** A snapshot's restore claim goes once the copy from it populated the target. */
function tempClaimCleanup(input: DataVolumeInput, pvc: V1PersistentVolumeClaim): Action[] {
  const temp = input.tempClaim;
  const ref = cloneRequestOf(pvc);
  if (temp === undefined || ref === undefined || ref.name !== temp.metadata?.name) return [];
  if (temp.metadata?.deletionTimestamp !== undefined) return [];
  if (annotation(pvc, Annotations.PodPhase) !== PodPhases.Succeeded) return [];
  return [{ kind: 'deletePvc', namespace: ref.namespace, name: ref.name }];
}

/** The phase: failed when invalid, a smart clone's own, else the one the claim shows. */
function phaseOf(
  step: TargetStep,
  pvc: V1PersistentVolumeClaim | undefined,
  waitForFirstConsumer: boolean,
): DataVolumePhase {
  if (step.invalid !== undefined) return DataVolumePhases.Failed;
  return (
    step.phase ??
    (pvc === undefined ? undefined : smartTargetPhase(pvc)) ??
    derivePhase({ pvc, waitForFirstConsumer })
  );
}

/** How clone events name the source and target of the DataVolume's claim, if it is a clone's. */
function cloneNamesOf(
  pvc: V1PersistentVolumeClaim | undefined,
  target: string,
): CloneNames | undefined {
  if (pvc === undefined) return undefined;
  const cloneRef = cloneRequestOf(pvc);
  if (cloneRef !== undefined) return { source: claimRefText(cloneRef), target };
  const smart = annotation(pvc, SmartCloneAnnotations.Source);
  if (smart === undefined || !isSmartTarget(pvc)) return undefined;
  const [kind = 'pvc', source = ''] = smart.split(' ');
  return { source, target, kind };
}

interface EventInput {
  readonly target: EventTarget;
  readonly oldStatus: DataVolumeStatus | undefined;
  readonly phase: DataVolumePhase;
  readonly conditions: readonly DataVolumeCondition[];
  readonly invalid: string | undefined;
  readonly pvcName: string;
  readonly upload: boolean;
  readonly clone: CloneNames | undefined;
}

function events(input: EventInput): EventAction[] {
  const out: EventAction[] = [];
  const { target, oldStatus } = input;
  const oldRunning = findCondition(oldStatus?.conditions, ConditionTypes.Running);
  const running = input.conditions.find((c) => c.type === ConditionTypes.Running);
  if (input.invalid !== undefined) {
    if (oldRunning?.message !== input.invalid) {
      out.push({
        kind: 'event',
        target,
        type: 'Warning',
        reason: EventReasons.ErrInvalidSpec,
        message: input.invalid,
      });
    }
    return out;
  }
  if ((oldStatus?.phase ?? '') !== input.phase) {
    const e = phaseEvent(input.phase, input.pvcName, input.upload, input.clone);
    if (e !== undefined) out.push({ ...e, target });
  }
  // CDI: a Warning carrying the Running reason and message whenever the transfer is not running,
  // not done, and the message changed (except the routine "scratch space required").
  if (
    running !== undefined &&
    running.status === ConditionStatuses.False &&
    running.message !== undefined &&
    running.message !== '' &&
    running.message !== (oldRunning?.message ?? '') &&
    running.reason !== ConditionReasons.Completed &&
    running.reason !== ConditionReasons.ScratchSpaceRequired &&
    input.phase !== DataVolumePhases.Succeeded
  ) {
    out.push({
      kind: 'event',
      target,
      type: 'Warning',
      reason: running.reason === undefined || running.reason === '' ? 'Error' : running.reason,
      message: running.message,
    });
  }
  return out;
}

/** What the DataVolume's target claim needs: create it, or why not (invalid, or a Running override). */
interface TargetStep {
  readonly create?: V1PersistentVolumeClaim;
  /** Actions before the claim (a smart clone's temporary snapshot, a fallback event). */
  readonly actions?: readonly Action[];
  /** The phase while there is no claim yet (a smart clone taking its snapshot). */
  readonly phase?: DataVolumePhase;
  /** How clone events name the source while there is no claim yet. */
  readonly names?: CloneNames;
  readonly invalid?: string;
  readonly foreign?: ConditionValue;
  /** The claim exists but belongs to something else: the DataVolume ignores it. */
  readonly notOurs?: boolean;
}

function targetStep(input: DataVolumeInput, problems: readonly string[]): TargetStep {
  const { dv, pvc } = input;
  if (problems.length > 0) return { invalid: problems.join('; ') };
  if (pvc === undefined && unresolvableStorage(dv, input.config)) {
    // CDI: the DataVolume stays Pending with this reason until a storage class appears.
    return {
      foreign: {
        type: ConditionTypes.Running,
        status: ConditionStatuses.False,
        reason: EventReasons.ErrClaimNotValid,
        message: NO_STORAGE_CLASS_MESSAGE,
      },
    };
  }
  if (pvc === undefined && isCloneSpec(dv)) {
    const plan = planClone(input);
    if (plan.kind === 'create') return { create: plan.pvc, actions: plan.actions ?? [] };
    if (plan.kind === 'invalid') return { invalid: plan.message };
    if (plan.kind === 'snapshotting')
      return {
        actions: plan.actions,
        phase: plan.phase ?? DataVolumePhases.SnapshotForSmartCloneInProgress,
        names: plan.names,
      };
    return {
      foreign: {
        type: ConditionTypes.Running,
        status: ConditionStatuses.False,
        reason: plan.reason ?? ConditionReasons.CloneWithoutSource,
        message: plan.message,
      },
    };
  }
  if (pvc === undefined) return { create: buildTargetPvc(dv, input.config) };
  if (!isOwnedBy(pvc, dv)) {
    return {
      notOurs: true,
      foreign: {
        type: ConditionTypes.Running,
        status: ConditionStatuses.False,
        reason: EventReasons.ErrResourceExists,
        message: `Resource ${dv.metadata.name ?? ''} already exists and is not managed by DataVolume`,
      },
    };
  }
  return {};
}

/** CDI's `ErrClaimNotValid` message for a `storage` claim without access modes nor class. */
export const NO_STORAGE_CLASS_MESSAGE =
  'PVC spec is missing accessMode and no storageClass to choose profile';

/** A `storage` claim without access modes whose class cannot be found (none named, no default). */
function unresolvableStorage(dv: DataVolume, config: EffectiveConfig): boolean {
  const storage = dv.spec?.storage;
  if (dv.spec?.pvc !== undefined || storage === undefined) return false;
  if ((storage.accessModes ?? []).length > 0) return false;
  return (
    resolveStorageClass(config, storage.storageClassName) === undefined &&
    defaultVirtStorageClass(config) === undefined
  );
}

/** What a clone DataVolume without its target claim does next. */
type ClonePlan =
  | {
      readonly kind: 'create';
      readonly pvc: V1PersistentVolumeClaim;
      readonly actions?: readonly Action[];
    }
  | { readonly kind: 'wait' | 'invalid'; readonly message: string; readonly reason?: string }
  | {
      /**
       * A temporary object is being made first (a smart clone's snapshot, a snapshot's restore
       * claim): shown as `phase` (default SnapshotForSmartCloneInProgress).
       */
      readonly kind: 'snapshotting';
      readonly actions: readonly Action[];
      readonly names: CloneNames;
      readonly phase?: DataVolumePhase;
    };

/**
 * A clone's target is created only once its source can be read: the source's size is the
 * default target size, and CDI's size check needs it (CDI likewise creates no target for a clone
 * without source). A source in another namespace needs a valid clone token first.
 */
function planClone(input: DataVolumeInput): ClonePlan {
  const { dv, config } = input;
  const src = input.cloneSource;
  if (src === undefined) return { kind: 'wait', message: 'The clone source is not resolved yet' };
  if (src.kind === 'unresolved') return { kind: 'wait', message: src.message };
  if (src.kind === 'snapshot') return planSnapshotSource(input, src.ref);
  const namespace = dv.metadata.namespace ?? '';
  if (src.ref.namespace !== namespace && input.cloneTokenProblem !== undefined) {
    // Waits: the token cannot become valid, but the DataVolume may be recreated by an allowed
    // user; CDI likewise keeps retrying with this reason.
    return {
      kind: 'wait',
      reason: ConditionReasons.CloneValidationFailed,
      message: `${ConditionMessages.CloneValidationFailed}: ${input.cloneTokenProblem}`,
    };
  }
  const wait = sourceWaitMessage(src.ref, src.pvc);
  if (wait !== undefined || src.pvc === undefined)
    return { kind: 'wait', message: wait ?? `The source pvc ${src.ref.name} doesn't exist` };
  const source = sizedSource(src.pvc);
  const clone = { ref: src.ref, source };
  const rendered = renderClaimSpec(dv, config, clone);
  const bytes = claimBytes({ spec: rendered });
  if (source !== undefined && bytes !== undefined) {
    const problem = cloneSizeProblem(
      source,
      {
        bytes,
        block: rendered.volumeMode === 'Block',
        storageClassName: rendered.storageClassName,
      },
      config,
    );
    if (problem !== undefined) return { kind: 'invalid', message: problem };
  }
  const base = buildTargetPvc(dv, config, clone);
  return planStrategy(input, src.ref, src.pvc, base);
}

/** A claim's capacity (its request while unknown), as a quantity. */
function capacityText(pvc: V1PersistentVolumeClaim): string | undefined {
  const q = pvc.status?.capacity?.['storage'] ?? pvc.spec?.resources?.requests?.['storage'];
  return q === undefined ? undefined : String(q);
}

/** What the strategy needs to know of the target and its class. */
interface TargetView {
  readonly provisioner: string | undefined;
  readonly expands: boolean;
  readonly profile: CloneProfile | undefined;
  readonly block: boolean;
  readonly bytes: number | undefined;
}

function targetClass(input: DataVolumeInput, base: V1PersistentVolumeClaim): TargetView {
  const { config } = input;
  const name = resolveStorageClass(config, base.spec?.storageClassName);
  const info = config.storageClasses.find((sc) => sc.name === name);
  const profile = name === undefined ? undefined : config.cloneProfiles?.[name];
  return {
    provisioner: info?.provisioner,
    expands: info?.allowVolumeExpansion === true,
    profile,
    block: base.spec?.volumeMode === 'Block',
    bytes: claimBytes(base),
  };
}

/** The fallback's Warning event when a storage-side strategy was configured, not defaulted. */
function fallbackActions(
  input: DataVolumeInput,
  choice: StrategyChoice,
  configured: boolean,
): Action[] {
  if (choice.fallback === undefined || !configured) return [];
  return [
    {
      kind: 'event',
      target: dvTarget(input.dv),
      type: 'Warning',
      reason: choice.fallback.reason,
      message: choice.fallback.message,
    },
  ];
}

/** A copy target carries CDI's clone type and, after a fallback, its reason. */
function asCopyTarget(
  base: V1PersistentVolumeClaim,
  choice: StrategyChoice,
): V1PersistentVolumeClaim {
  const annotations: Record<string, string> = {
    ...base.metadata?.annotations,
    [SmartCloneAnnotations.CloneType]: CloneStrategies.Copy,
  };
  if (choice.fallback !== undefined)
    annotations[SmartCloneAnnotations.FallbackReason] = choice.fallback.message;
  return { ...base, metadata: { ...base.metadata, annotations } };
}

/** The clone of a claim by the strategy CDI would choose. */
function planStrategy(
  input: DataVolumeInput,
  ref: ClaimRef,
  source: V1PersistentVolumeClaim,
  base: V1PersistentVolumeClaim,
): ClonePlan {
  const { dv, config } = input;
  const target = targetClass(input, base);
  const sourceInfo = config.storageClasses.find(
    (sc) => sc.name === resolveStorageClass(config, source.spec?.storageClassName),
  );
  const override = config.cloneStrategyOverride;
  const profileStrategy = target.profile?.cloneStrategy;
  const configured =
    askedStrategy(override, profileStrategy) !== CloneStrategies.Copy &&
    (override !== undefined || profileStrategy !== undefined);
  const snapshotClass = compatibleSnapshotClass(
    input.snapshotClasses ?? [],
    sourceInfo?.provisioner,
    target.profile?.snapshotClass,
  );
  const startStorage = capacityText(source) ?? '';
  const choice = chooseStrategy({
    override,
    profileStrategy,
    source: {
      namespace: ref.namespace,
      provisioner: sourceInfo?.provisioner,
      block: isBlock(source),
      bytes: bytesOf(startStorage),
    },
    target: { namespace: dv.metadata.namespace ?? '', ...target },
    targetExpands: target.expands,
    snapshotClass,
  });
  const sourceText = `pvc ${claimRefText(ref)}`;
  if (choice.strategy === CloneStrategies.CsiClone) {
    return {
      kind: 'create',
      pvc: buildSmartTarget(base, {
        strategy: CloneStrategies.CsiClone,
        dataSource: { kind: 'PersistentVolumeClaim', name: ref.name },
        startStorage,
        sourceText,
      }),
    };
  }
  if (choice.strategy === CloneStrategies.Snapshot && snapshotClass !== undefined)
    return planSnapshotClone(input, { ref, base, snapshotClass, startStorage, sourceText });
  return {
    kind: 'create',
    pvc: asCopyTarget(base, choice),
    actions: fallbackActions(input, choice, configured),
  };
}

/** What a snapshot clone of a claim starts from. */
interface SnapshotClonePlan {
  readonly ref: ClaimRef;
  readonly base: V1PersistentVolumeClaim;
  readonly snapshotClass: string;
  readonly startStorage: string;
  readonly sourceText: string;
}

/** A snapshot clone of a claim: take the temporary snapshot, then restore it into the target. */
function planSnapshotClone(input: DataVolumeInput, plan: SnapshotClonePlan): ClonePlan {
  const { dv } = input;
  const { ref, base, snapshotClass, startStorage, sourceText } = plan;
  const snap = input.snapshot;
  const names = {
    source: claimRefText(ref),
    target: `${dv.metadata.namespace ?? ''}/${dv.metadata.name ?? ''}`,
    kind: 'pvc',
  };
  if (snap === undefined)
    return {
      kind: 'snapshotting',
      actions: [
        { kind: 'createVolumeSnapshot', snapshot: buildTempSnapshot(dv, ref, snapshotClass) },
      ],
      names,
    };
  if (!snap.ready || snap.deleting) return { kind: 'snapshotting', actions: [], names };
  const name = tempSnapshotName(dv);
  return {
    kind: 'create',
    pvc: buildSmartTarget(base, {
      strategy: CloneStrategies.Snapshot,
      dataSource: { kind: 'VolumeSnapshot', name },
      startStorage: snap.restoreSize ?? startStorage,
      tempSnapshot: name,
      sourceText,
    }),
  };
}

/** A clone of a VolumeSnapshot (`source.snapshot`, or a DataSource naming one). */
function planSnapshotSource(input: DataVolumeInput, ref: ClaimRef): ClonePlan {
  const { dv, config } = input;
  if (ref.namespace !== (dv.metadata.namespace ?? ''))
    return {
      kind: 'wait',
      reason: ConditionReasons.CloneValidationFailed,
      message: `${ConditionMessages.CloneValidationFailed}: a clone of a snapshot in another namespace is not supported`,
    };
  const snap = input.snapshot;
  if (snap === undefined || snap.deleting)
    return { kind: 'wait', message: `The source snapshot ${ref.name} doesn't exist` };
  if (!snap.ready)
    return { kind: 'wait', message: `The source snapshot ${ref.name} is not ready yet` };
  const restoreBytes = bytesOf(snap.restoreSize);
  const sized =
    restoreBytes === undefined
      ? undefined
      : { bytes: restoreBytes, block: snap.block, storageClassName: undefined };
  const base = buildTargetPvc(dv, config, { ref, source: sized });
  const target = targetClass(input, base);
  const choice = chooseSnapshotStrategy({
    snapshot: { driver: snap.driver, block: snap.block, bytes: restoreBytes },
    target,
    targetExpands: target.expands,
  });
  if (choice.fallback !== undefined) return planSnapshotCopy(input, ref, snap, choice.fallback);
  return {
    kind: 'create',
    pvc: buildSmartTarget(base, {
      strategy: CloneStrategies.Snapshot,
      dataSource: { kind: 'VolumeSnapshot', name: ref.name },
      startStorage: snap.restoreSize ?? '',
      sourceText: `snapshot ${claimRefText(ref)}`,
    }),
  };
}

/** The class a snapshot is restored into for a host-assisted copy: one of its driver. */
function classOfDriver(config: EffectiveConfig, driver: string | undefined): string | undefined {
  const classes = config.storageClasses
    .filter((sc) => driver !== undefined && sc.provisioner === driver)
    .sort((a, b) => a.name.localeCompare(b.name));
  return (classes.find((sc) => sc.isDefault) ?? classes[0])?.name;
}

/**
 * The host-assisted fallback of a snapshot clone (CDI `planHostAssistedFromSnapshot`): restore
 * the snapshot into a temporary claim of a class of its driver, then copy that claim the way every
 * host-assisted clone does; the temporary claim is deleted once the target is populated.
 */
function planSnapshotCopy(
  input: DataVolumeInput,
  ref: ClaimRef,
  snap: SnapshotInfo,
  fallback: Fallback,
): ClonePlan {
  const { dv, config } = input;
  const namespace = dv.metadata.namespace ?? '';
  const names = {
    source: claimRefText(ref),
    target: `${namespace}/${dv.metadata.name ?? ''}`,
    kind: 'snapshot',
  };
  const temp = input.tempClaim;
  if (temp === undefined) {
    const storageClassName = classOfDriver(config, snap.driver);
    if (storageClassName === undefined)
      return {
        kind: 'wait',
        reason: fallback.reason,
        message: `${fallback.message}; no storage class of the snapshot's driver ${snap.driver ?? ''} to restore it into for a host-assisted clone`,
      };
    return {
      kind: 'snapshotting',
      phase: DataVolumePhases.CloneFromSnapshotSourceInProgress,
      actions: [
        { kind: 'createPvc', pvc: buildSnapshotRestoreClaim(dv, ref, snap, storageClassName) },
      ],
      names,
    };
  }
  if (temp.status?.phase !== 'Bound')
    return {
      kind: 'snapshotting',
      phase: DataVolumePhases.CloneFromSnapshotSourceInProgress,
      actions: [],
      names,
    };
  const tempRef = { namespace, name: temp.metadata?.name ?? '' };
  const source = sizedSource(temp);
  const clone = { ref: tempRef, source };
  const rendered = renderClaimSpec(dv, config, clone);
  const bytes = claimBytes({ spec: rendered });
  if (source !== undefined && bytes !== undefined) {
    const target = {
      bytes,
      block: rendered.volumeMode === 'Block',
      storageClassName: rendered.storageClassName,
    };
    const problem = cloneSizeProblem(source, target, config);
    if (problem !== undefined) return { kind: 'invalid', message: problem };
  }
  const choice = { strategy: CloneStrategies.Copy, fallback };
  return {
    kind: 'create',
    pvc: asCopyTarget(buildTargetPvc(dv, config, clone), choice),
    actions: fallbackActions(input, choice, true),
  };
}
