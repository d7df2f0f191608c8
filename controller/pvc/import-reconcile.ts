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
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { Annotations } from '../../common/contract.js';
import { ConditionReasons, EventReasons, PodPhases } from '../../common/api/phases.js';
import type { Action } from '../actions.js';
import type { ControllerSettings, EffectiveConfig } from '../config.js';
import { annotation, cloneRequestOf } from '../builders/claim.js';
import { cloneWaitMessage } from './clone-source.js';
import { sourceInUse } from './clone-source-reconcile.js';
import { buildImporterPod } from '../builders/importer-pod.js';
import { importerPodName } from '../builders/naming.js';
import { containerStatus, patch, pvcTarget, runningAnns, runningState } from './claim-state.js';
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
  /** For a clone target: its source claim from the cache (undefined when missing). */
  readonly cloneSource?: V1PersistentVolumeClaim | undefined;
  /**
   * For a clone target without its pod yet: pods (`ns/name`) other than CDI's that mount the
   * source writable and have not finished; the clone waits for them (CDI `CloneSourceInUse`).
   */
  readonly cloneSourceUsers?: readonly string[];
}

/**
 * True for claims this reconcile serves: an endpoint or a source annotation (CDI
 * `shouldReconcilePVC`), or a clone request (a host-assisted clone is an import from the source).
 */
export function isImportClaim(pvc: V1PersistentVolumeClaim): boolean {
  const anns = pvc.metadata?.annotations ?? {};
  return (
    Annotations.Endpoint in anns ||
    Annotations.Source in anns ||
    // A clone from another namespace is an upload target served by a source pod (network clone).
    (Annotations.CloneRequest in anns && !(Annotations.UploadTarget in anns))
  );
}

/** True once the import finished (pod phase annotation `Succeeded`). */
export function isImportComplete(pvc: V1PersistentVolumeClaim): boolean {
  return annotation(pvc, Annotations.PodPhase) === PodPhases.Succeeded;
}

/** True when the import failed for good. */
export function isFatal(pvc: V1PersistentVolumeClaim): boolean {
  return annotation(pvc, Annotations.FatalError) === 'true';
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
  const cloneWait = cloneWaitMessage(pvc, input.cloneSource);
  if (cloneWait !== undefined) {
    // No pod until the source can be read; a source event re-queues this claim.
    return patch(pvc, runningAnns(false, ConditionReasons.CloneWithoutSource, cloneWait));
  }
  const users = input.cloneSourceUsers ?? [];
  const ref = cloneRequestOf(pvc);
  if (users.length > 0 && ref !== undefined) return sourceInUse(pvc, ref.name, users);
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
    pod: buildImporterPod({
      pvc,
      config: input.config,
      settings: input.settings,
      scratch,
      ...(input.cloneSource === undefined ? {} : { cloneSource: input.cloneSource }),
    }),
    scratch,
  });
  return actions;
}

function decideWithPod(input: ImportInput, pod: V1Pod): Action[] {
  const { pvc } = input;
  const cs = containerStatus(pod, 'importer');
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
              reason:
                cloneRequestOf(pvc) === undefined
                  ? EventReasons.ImportSucceeded
                  : EventReasons.CloneSucceeded,
              message: cloneRequestOf(pvc) === undefined ? 'Import Successful' : 'Clone Successful',
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
