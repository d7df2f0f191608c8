// SPDX-License-Identifier: Apache-2.0
/**
 * The import reconcile of one claim (CDI `import-controller.go`), shared by DataVolume imports and
 * bare annotated claims. All its state lives in the claim's annotations, so a restarted controller
 * picks up where the last one stopped. `decideImport` is pure: claim + importer pod in, actions
 * out.
 *
 * Sequence: no pod → set `importPodName` and create `importer-<pvc>` → copy the pod's phase,
 * restarts and running condition to the claim → on exit 0 mark it complete and delete the pod
 * (unless retained), on "scratch required" delete the pod and re-create it with scratch, on a
 * terminal error set `fatalError` and delete the pod; every other failure is retried by the pod's
 * `restartPolicy: OnFailure`, with the cause in the running condition and the restart count.
 */
import type { V1ContainerStatus, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { Annotations } from '../../common/contract.js';
import {
  ConditionMessages,
  ConditionReasons,
  EventReasons,
  PodPhases,
} from '../../common/phases.js';
import type { Action, EventTarget } from '../actions.js';
import type { ControllerSettings, EffectiveConfig } from '../config.js';
import { annotation, buildImporterPod } from '../builders/importer-pod.js';
import { importerPodName } from '../builders/naming.js';
import { judgeTermination, type TerminationVerdict } from './termination.js';

/** Inputs of {@link decideImport}. */
export interface ImportInput {
  readonly pvc: V1PersistentVolumeClaim;
  /** The importer pod from the cache, if any. */
  readonly pod: V1Pod | undefined;
  readonly config: EffectiveConfig;
  readonly settings: ControllerSettings;
  /** The claim's storage class binds on first consumer. */
  readonly waitForFirstConsumer: boolean;
}

/** Kubelet waiting reasons that mean the image cannot be pulled. */
const IMAGE_PULL_REASONS: ReadonlySet<string> = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
]);

/** True for claims this reconcile serves: an endpoint or a source annotation (CDI `shouldReconcilePVC`). */
export function isImportClaim(pvc: V1PersistentVolumeClaim): boolean {
  const anns = pvc.metadata?.annotations ?? {};
  return Annotations.Endpoint in anns || Annotations.Source in anns;
}

/** True once the import finished (pod phase annotation `Succeeded`). */
export function isImportComplete(pvc: V1PersistentVolumeClaim): boolean {
  return annotation(pvc, Annotations.PodPhase) === PodPhases.Succeeded;
}

/** True when the import failed for good. */
export function isFatal(pvc: V1PersistentVolumeClaim): boolean {
  return annotation(pvc, Annotations.FatalError) === 'true';
}

/** The event target of a claim. */
export function pvcTarget(pvc: V1PersistentVolumeClaim): EventTarget {
  return {
    kind: 'PersistentVolumeClaim',
    apiVersion: 'v1',
    namespace: pvc.metadata?.namespace ?? '',
    name: pvc.metadata?.name ?? '',
    uid: pvc.metadata?.uid ?? '',
  };
}

/** The annotations of `wanted` that differ from the claim's (so unchanged claims get no patch). */
function changed(
  pvc: V1PersistentVolumeClaim,
  wanted: Record<string, string | null>,
): Record<string, string | null> {
  const current = pvc.metadata?.annotations ?? {};
  return Object.fromEntries(
    Object.entries(wanted).filter(([k, v]) => (v === null ? k in current : current[k] !== v)),
  );
}

function patch(
  pvc: V1PersistentVolumeClaim,
  wanted: Record<string, string | null>,
  labels?: Record<string, string>,
): Action[] {
  const diff = changed(pvc, wanted);
  const labelDiff = Object.fromEntries(
    Object.entries(labels ?? {}).filter(([k, v]) => pvc.metadata?.labels?.[k] !== v),
  );
  if (Object.keys(diff).length === 0 && Object.keys(labelDiff).length === 0) return [];
  return [
    {
      kind: 'patchPvc',
      namespace: pvc.metadata?.namespace ?? '',
      name: pvc.metadata?.name ?? '',
      annotations: diff,
      ...(Object.keys(labelDiff).length === 0 ? {} : { labels: labelDiff }),
    },
  ];
}

function runningAnns(running: boolean, reason: string, message: string): Record<string, string> {
  return {
    [Annotations.RunningCondition]: String(running),
    [Annotations.RunningConditionReason]: reason,
    [Annotations.RunningConditionMessage]: message,
  };
}

/** Decides the next steps of one import claim. */
export function decideImport(input: ImportInput): Action[] {
  const { pvc, pod } = input;
  if (!isImportClaim(pvc)) return [];
  if (pvc.metadata?.deletionTimestamp !== undefined) {
    // The claim is going (its DataVolume was deleted): stop the import now, or the claim's
    // protection finalizer would keep it, and the pod running, until the import ends.
    return pod === undefined || pod.metadata?.deletionTimestamp !== undefined
      ? []
      : [
          {
            kind: 'deletePod',
            namespace: pod.metadata?.namespace ?? '',
            name: pod.metadata?.name ?? '',
          },
        ];
  }
  if (pod === undefined) return decideWithoutPod(input);
  if (pod.metadata?.deletionTimestamp !== undefined) return [];
  return decideWithPod(input, pod);
}

function decideWithoutPod(input: ImportInput): Action[] {
  const { pvc } = input;
  if (isImportComplete(pvc) || isFatal(pvc)) return [];
  const bound = pvc.status?.phase === 'Bound';
  const immediate = annotation(pvc, Annotations.BindImmediate) !== undefined;
  // A claim that is not bound yet: with Immediate binding, wait for the provisioner; with
  // WaitForFirstConsumer, wait for a consumer unless the user asked for immediate binding, in
  // which case our importer pod is the first consumer (CDI HonorWaitForFirstConsumer).
  if (!bound && !(input.waitForFirstConsumer && immediate)) return [];
  const podName = importerPodName(pvc.metadata?.name ?? '');
  const actions: Action[] = patch(pvc, {
    [Annotations.ImportPodName]: podName,
    ...(annotation(pvc, Annotations.PodRestarts) === undefined
      ? { [Annotations.PodRestarts]: '0' }
      : {}),
  });
  const scratch = annotation(pvc, Annotations.RequiresScratch) === 'true';
  actions.push({
    kind: 'createPod',
    pod: buildImporterPod({ pvc, config: input.config, settings: input.settings, scratch }),
    scratch,
  });
  return actions;
}

function containerStatus(pod: V1Pod): V1ContainerStatus | undefined {
  const all = pod.status?.containerStatuses ?? [];
  return all.find((c) => c.name === 'importer') ?? all[0];
}

function decideWithPod(input: ImportInput, pod: V1Pod): Action[] {
  const { pvc } = input;
  const cs = containerStatus(pod);
  const known = Number(annotation(pvc, Annotations.PodRestarts) ?? '0');
  const restarts = Math.max(Number.isFinite(known) ? known : 0, cs?.restartCount ?? 0);
  const podPhase = pod.status?.phase ?? PodPhases.Pending;
  const terminated = cs?.state?.terminated;
  const last = cs?.lastState?.terminated;
  const base: Record<string, string> = { [Annotations.PodRestarts]: String(restarts) };

  if (podPhase === PodPhases.Succeeded || terminated?.exitCode === 0) {
    return onTermination(input, pod, judgeTermination(0, terminated?.message), base);
  }
  // A failed run, either just ended (restartPolicy OnFailure restarts it) or remembered in the
  // last state: a terminal cause ends the import; anything else is left to the restart.
  const failed = terminated ?? last;
  const failure =
    failed === undefined
      ? undefined
      : judgeTermination(failed.exitCode === 0 ? 1 : failed.exitCode, failed.message);
  if (failure?.terminal === true) return onTermination(input, pod, failure, base);
  if (podPhase === PodPhases.Failed) {
    return onTermination(input, pod, failure ?? judgeTermination(1, undefined), base);
  }
  const actions = patch(pvc, {
    ...base,
    ...runningState(pod, cs, failed?.reason, failure),
    [Annotations.PodPhase]: podPhase,
  });
  if (restarts > known && failure !== undefined) {
    actions.push({
      kind: 'event',
      target: pvcTarget(pvc),
      type: 'Warning',
      reason: EventReasons.ErrImportFailed,
      message: failure.message,
    });
  }
  return actions;
}

/** The running-condition annotations (and schedulability) of a pod that is not finished. */
function runningState(
  pod: V1Pod,
  cs: V1ContainerStatus | undefined,
  failedReason: string | undefined,
  failure: TerminationVerdict | undefined,
): Record<string, string | null> {
  const waiting = cs?.state?.waiting;
  const schedulable = { [Annotations.PodSchedulable]: null };
  if (cs?.state?.running !== undefined) {
    return { ...runningAnns(true, ConditionReasons.PodRunning, ''), ...schedulable };
  }
  if (waiting?.reason !== undefined && IMAGE_PULL_REASONS.has(waiting.reason)) {
    const message = `failed to pull image: ${cs?.image ?? ''}`;
    return { ...runningAnns(false, ConditionReasons.ImagePullFailed, message), ...schedulable };
  }
  if (failure !== undefined) {
    return {
      ...runningAnns(false, failedReason ?? ConditionReasons.Error, failure.message),
      ...schedulable,
    };
  }
  if (isUnschedulable(pod)) {
    return {
      ...runningAnns(false, ConditionReasons.Unschedulable, ConditionMessages.Unschedulable),
      [Annotations.PodSchedulable]: 'false',
    };
  }
  return { ...runningAnns(false, waiting?.reason ?? '', waiting?.message ?? ''), ...schedulable };
}

function isUnschedulable(pod: V1Pod): boolean {
  return (pod.status?.conditions ?? []).some(
    (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
  );
}

function onTermination(
  input: ImportInput,
  pod: V1Pod,
  verdict: TerminationVerdict,
  base: Record<string, string>,
): Action[] {
  const { pvc } = input;
  const del: Action = {
    kind: 'deletePod',
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
  };
  const target = pvcTarget(pvc);
  if (verdict.terminal) {
    return [
      ...patch(pvc, {
        ...base,
        ...runningAnns(false, verdict.reason, verdict.message),
        [Annotations.PodPhase]: PodPhases.Failed,
        [Annotations.FatalError]: 'true',
      }),
      {
        kind: 'event',
        target,
        type: 'Warning',
        reason: EventReasons.ErrImportFailed,
        message: verdict.message,
      },
      del,
    ];
  }
  if (verdict.scratchSpaceRequired) {
    // Not a restart: the same pod is re-created with scratch (CDI does not count it either).
    return [
      ...patch(pvc, {
        ...runningAnns(false, verdict.reason, verdict.message),
        [Annotations.RequiresScratch]: 'true',
      }),
      del,
    ];
  }
  if (verdict.succeeded) {
    const retain = annotation(pvc, Annotations.RetainAfterCompletion) === 'true';
    const wasComplete = isImportComplete(pvc);
    return [
      ...patch(
        pvc,
        {
          ...base,
          ...runningAnns(false, ConditionReasons.Completed, verdict.message),
          [Annotations.PodPhase]: PodPhases.Succeeded,
          ...(verdict.preallocationApplied ? { [Annotations.Preallocation]: 'true' } : {}),
        },
        { ...verdict.labels },
      ),
      ...(wasComplete
        ? []
        : [
            {
              kind: 'event',
              target,
              type: 'Normal',
              reason: EventReasons.ImportSucceeded,
              message: 'Import Successful',
            } as const,
          ]),
      ...(retain ? [] : [del]),
    ];
  }
  // A pod that ended Failed without a terminal cause (restartPolicy exhausted elsewhere): show
  // the cause and let a new pod try again.
  return [
    ...patch(pvc, {
      ...base,
      ...runningAnns(false, verdict.reason, verdict.message),
      [Annotations.PodPhase]: PodPhases.Failed,
    }),
    {
      kind: 'event',
      target,
      type: 'Warning',
      reason: EventReasons.ErrImportFailed,
      message: verdict.message,
    },
    del,
  ];
}
