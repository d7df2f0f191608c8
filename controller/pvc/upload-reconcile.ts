// SPDX-License-Identifier: Apache-2.0
/**
 * The upload reconcile of one claim (CDI `upload-controller.go`), shared by DataVolumes with
 * `source.upload` and bare claims annotated `storage.upload.target`. Like the import reconcile,
 * its state lives in the claim's annotations and `decideUpload` is pure.
 *
 * Sequence: bound claim without a pod → its TLS Secret, Service and pod `cdi-upload-<pvc>` →
 * copy the pod's phase, readiness (`storage.pod.ready`, which the proxy waits for), restarts and
 * running condition to the claim → on exit 0 ("Upload Complete") mark it Succeeded and delete
 * pod, Service and Secret. A failed upload is never terminal: the server exits non-zero, the pod
 * restarts (`OnFailure`), and the user may upload again. Removing the annotation or deleting the
 * claim removes the pod, Service and Secret.
 */
import type { V1ContainerStatus, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { Annotations, uploadServiceName } from '../../common/contract.js';
import {
  ConditionMessages,
  ConditionReasons,
  EventReasons,
  PodPhases,
} from '../../common/api/phases.js';
import type { Action } from '../actions.js';
import type { ControllerSettings, EffectiveConfig } from '../config.js';
import { annotation, cloneRequestOf } from '../builders/claim.js';
import { uploadPodName } from '../builders/naming.js';
import { UPLOAD_CONTAINER, buildUploadPod, buildUploadService } from '../builders/upload-pod.js';
import { containerStatus, patch, pvcTarget, runningAnns, runningState } from './claim-state.js';
import { judgeTermination } from './termination.js';

/** Inputs of {@link decideUpload}. */
export interface UploadInput {
  readonly pvc: V1PersistentVolumeClaim;
  /** The claim's upload pod from the cache, if any. */
  readonly pod: V1Pod | undefined;
  readonly config: EffectiveConfig;
  readonly settings: ControllerSettings;
  /** The claim's storage class binds on first consumer. */
  readonly waitForFirstConsumer: boolean;
}

/** True for claims marked as upload targets (any value, even empty, as in CDI). */
export function isUploadClaim(pvc: V1PersistentVolumeClaim): boolean {
  return Annotations.UploadTarget in (pvc.metadata?.annotations ?? {});
}

/** True when `pod` is this claim's upload pod (named so and owned by it). */
export function isUploadPodOf(pvc: V1PersistentVolumeClaim, pod: V1Pod): boolean {
  return (
    pod.metadata?.name === uploadPodName(pvc.metadata?.name ?? '') &&
    (pod.metadata.ownerReferences ?? []).some((o) => o.uid === pvc.metadata?.uid)
  );
}

function isReady(pod: V1Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Deletes the pod (unless kept), Service and Secret of a claim. */
function cleanup(pvc: V1PersistentVolumeClaim, pod: V1Pod | undefined): Action[] {
  const namespace = pvc.metadata?.namespace ?? '';
  const name = uploadServiceName(pvc.metadata?.name ?? '');
  return [
    ...(pod === undefined || pod.metadata?.deletionTimestamp !== undefined
      ? []
      : [{ kind: 'deletePod', namespace, name: pod.metadata?.name ?? '' } as const]),
    { kind: 'deleteService', namespace, name },
    { kind: 'deleteSecret', namespace, name },
  ];
}

/** Decides the next steps of one upload claim (or of a claim that stopped being one). */
export function decideUpload(input: UploadInput): Action[] {
  const { pvc } = input;
  const pod = input.pod !== undefined && isUploadPodOf(pvc, input.pod) ? input.pod : undefined;
  if (!isUploadClaim(pvc) || pvc.metadata?.deletionTimestamp !== undefined)
    return pod === undefined ? [] : cleanup(pvc, pod);
  if (pod === undefined) return decideWithoutPod(input);
  if (pod.metadata?.deletionTimestamp !== undefined) return [];
  return decideWithPod(input, pod);
}

function decideWithoutPod(input: UploadInput): Action[] {
  const { pvc } = input;
  if (annotation(pvc, Annotations.PodPhase) === PodPhases.Succeeded) return [];
  const bound = pvc.status?.phase === 'Bound';
  const immediate = annotation(pvc, Annotations.BindImmediate) !== undefined;
  if (!bound && !(input.waitForFirstConsumer && immediate)) return [];
  return [
    ...patch(pvc, {
      [Annotations.UploadPodName]: uploadPodName(pvc.metadata?.name ?? ''),
      [Annotations.PodReady]: 'false',
      ...(annotation(pvc, Annotations.PodRestarts) === undefined
        ? { [Annotations.PodRestarts]: '0' }
        : {}),
    }),
    // Secret first: the pod cannot start without it, and a crash between the steps converges.
    { kind: 'ensureUploadSecret', pvc },
    { kind: 'createService', service: buildUploadService(pvc) },
    {
      kind: 'createUploadPod',
      pod: buildUploadPod({ pvc, config: input.config, settings: input.settings }),
    },
  ];
}

/** The message of the container's last failed run, if any (never terminal, see the module comment). */
function lastFailure(cs: V1ContainerStatus | undefined): { message: string } | undefined {
  const failed = cs?.state?.terminated ?? cs?.lastState?.terminated;
  if (failed === undefined) return undefined;
  const exitCode = failed.exitCode === 0 ? 1 : failed.exitCode;
  return { message: judgeTermination(exitCode, failed.message).message };
}

function decideWithPod(input: UploadInput, pod: V1Pod): Action[] {
  const { pvc } = input;
  const cs = containerStatus(pod, UPLOAD_CONTAINER);
  const known = Number(annotation(pvc, Annotations.PodRestarts) ?? '0');
  const restarts = Math.max(Number.isFinite(known) ? known : 0, cs?.restartCount ?? 0);
  const podPhase = pod.status?.phase ?? PodPhases.Pending;
  const terminated = cs?.state?.terminated;
  const base = { [Annotations.PodRestarts]: String(restarts) };
  if (podPhase === PodPhases.Succeeded || terminated?.exitCode === 0)
    return onSuccess(pvc, pod, judgeTermination(0, terminated?.message), base);
  const failure = lastFailure(cs);
  if (podPhase === PodPhases.Failed) return onPodFailed(pvc, pod, failure, base);
  const ready = podPhase === PodPhases.Running && isReady(pod);
  const actions = patch(pvc, {
    ...base,
    ...runningState(pod, cs, (terminated ?? cs?.lastState?.terminated)?.reason, failure),
    [Annotations.PodPhase]: podPhase,
    [Annotations.PodReady]: String(ready),
  });
  if (restarts > known && failure !== undefined) {
    actions.push({
      kind: 'event',
      target: pvcTarget(pvc),
      type: 'Warning',
      reason: EventReasons.ErrUploadFailed,
      message: failure.message,
    });
  }
  return actions;
}

/** A pod that will not restart by itself: record why, and let a new pod take over. */
function onPodFailed(
  pvc: V1PersistentVolumeClaim,
  pod: V1Pod,
  failure: { message: string } | undefined,
  base: Record<string, string>,
): Action[] {
  const message = failure?.message ?? 'upload server failed';
  return [
    ...patch(pvc, {
      ...base,
      ...runningAnns(false, ConditionReasons.Error, message),
      [Annotations.PodPhase]: PodPhases.Failed,
      [Annotations.PodReady]: 'false',
    }),
    {
      kind: 'event',
      target: pvcTarget(pvc),
      type: 'Warning',
      reason: EventReasons.UploadFailed,
      message,
    },
    { kind: 'deletePod', namespace: pod.metadata?.namespace ?? '', name: pod.metadata?.name ?? '' },
  ];
}

function onSuccess(
  pvc: V1PersistentVolumeClaim,
  pod: V1Pod,
  verdict: ReturnType<typeof judgeTermination>,
  base: Record<string, string>,
): Action[] {
  const retain = annotation(pvc, Annotations.RetainAfterCompletion) === 'true';
  const wasComplete = annotation(pvc, Annotations.PodPhase) === PodPhases.Succeeded;
  const cleanupActions = cleanup(pvc, retain ? undefined : pod);
  return [
    ...patch(pvc, {
      ...base,
      ...runningAnns(
        false,
        ConditionReasons.Completed,
        // A network clone's target was filled by its source pod (CDI: "Clone Complete").
        cloneRequestOf(pvc) === undefined
          ? ConditionMessages.UploadComplete
          : ConditionMessages.CloneComplete,
      ),
      [Annotations.PodPhase]: PodPhases.Succeeded,
      [Annotations.PodReady]: 'false',
      ...(verdict.preallocationApplied ? { [Annotations.Preallocation]: 'true' } : {}),
    }),
    ...(wasComplete
      ? []
      : [
          {
            kind: 'event',
            target: pvcTarget(pvc),
            type: 'Normal',
            reason: EventReasons.UploadSucceeded,
            message: 'Upload Successful',
          } as const,
        ]),
    ...(wasComplete && retain ? [] : cleanupActions),
  ];
}
