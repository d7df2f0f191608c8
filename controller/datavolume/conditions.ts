// SPDX-License-Identifier: Apache-2.0
/**
 * DataVolume conditions Bound, Running and Ready (CDI `pkg/controller/datavolume/conditions.go`).
 * `lastTransitionTime` moves only when a condition's status changes, `lastHeartbeatTime` when its
 * reason or message change, so an unchanged DataVolume gets no status write. Pure.
 */
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { Annotations } from '../../common/contract.js';
import type { DataVolumeCondition } from '../../common/api/datavolume.js';
import {
  ConditionMessages,
  ConditionReasons,
  ConditionStatuses,
  ConditionTypes,
  DataVolumePhases,
  type ConditionStatus,
  type DataVolumePhase,
} from '../../common/api/phases.js';

/** A condition before timestamps are applied. */
export interface ConditionValue {
  readonly type: string;
  readonly status: ConditionStatus;
  readonly reason: string;
  readonly message: string;
}

/** Inputs of {@link desiredConditions}. */
export interface ConditionInput {
  readonly phase: DataVolumePhase;
  readonly pvc: V1PersistentVolumeClaim | undefined;
  /** Set when the spec is invalid: shown as Running and Ready False with reason InvalidSpec. */
  readonly invalid?: string;
  /**
   * Why the upload server refused the last upload (an image too large for the claim, a corrupt
   * stream): shown as Running False with reason Error until the next upload starts, which also
   * records it as a Warning event (the DataVolume's events follow its Running condition).
   */
  readonly uploadRefusal?: string;
}

function boundCondition(pvc: V1PersistentVolumeClaim | undefined): ConditionValue {
  const type = ConditionTypes.Bound;
  if (pvc === undefined) {
    return {
      type,
      status: ConditionStatuses.False,
      reason: ConditionReasons.NotFound,
      message: ConditionMessages.NoPvc,
    };
  }
  const name = pvc.metadata?.name ?? '';
  const anns = pvc.metadata?.annotations ?? {};
  switch (pvc.status?.phase) {
    case 'Bound':
      return {
        type,
        status: ConditionStatuses.True,
        reason: ConditionReasons.Bound,
        message: `PVC ${name} Bound`,
      };
    case 'Lost':
      return {
        type,
        status: ConditionStatuses.False,
        reason: ConditionReasons.ClaimLost,
        message: ConditionMessages.ClaimLost,
      };
    default: {
      const reason = anns[Annotations.BoundConditionReason];
      const message = anns[Annotations.BoundConditionMessage];
      return {
        type,
        status: ConditionStatuses.False,
        reason: reason ?? ConditionReasons.Pending,
        message: message ?? `PVC ${name} Pending`,
      };
    }
  }
}

function runningCondition(pvc: V1PersistentVolumeClaim | undefined): ConditionValue {
  const anns = pvc?.metadata?.annotations ?? {};
  const running = anns[Annotations.RunningCondition] === 'true';
  return {
    type: ConditionTypes.Running,
    status: running ? ConditionStatuses.True : ConditionStatuses.False,
    reason: anns[Annotations.RunningConditionReason] ?? '',
    message: anns[Annotations.RunningConditionMessage] ?? '',
  };
}

function readyCondition(phase: DataVolumePhase, running: ConditionValue): ConditionValue {
  const type = ConditionTypes.Ready;
  if (phase === DataVolumePhases.Succeeded) {
    return { type, status: ConditionStatuses.True, reason: '', message: '' };
  }
  if (phase === DataVolumePhases.Unknown) {
    return { type, status: ConditionStatuses.Unknown, reason: '', message: '' };
  }
  if (running.status === ConditionStatuses.True) {
    return {
      type,
      status: ConditionStatuses.False,
      reason: ConditionReasons.TransferRunning,
      message: '',
    };
  }
  return { type, status: ConditionStatuses.False, reason: '', message: '' };
}

/** The three conditions a DataVolume should show, without timestamps. */
export function desiredConditions(input: ConditionInput): ConditionValue[] {
  const bound = boundCondition(input.pvc);
  if (input.invalid !== undefined) {
    const invalid = {
      status: ConditionStatuses.False,
      reason: ConditionReasons.InvalidSpec,
      message: input.invalid,
    };
    return [
      { ...invalid, type: ConditionTypes.Ready },
      bound,
      { ...invalid, type: ConditionTypes.Running },
    ];
  }
  const running =
    input.uploadRefusal !== undefined && input.phase !== DataVolumePhases.Succeeded
      ? {
          type: ConditionTypes.Running,
          status: ConditionStatuses.False,
          reason: ConditionReasons.Error,
          message: input.uploadRefusal,
        }
      : runningCondition(input.pvc);
  return [readyCondition(input.phase, running), bound, running];
}

/**
 * Merges desired condition values into the existing list, keeping timestamps where nothing
 * changed; conditions of other types are kept as they are.
 */
export function mergeConditions(
  existing: readonly DataVolumeCondition[] | undefined,
  desired: readonly ConditionValue[],
  now: string,
): DataVolumeCondition[] {
  const out: DataVolumeCondition[] = (existing ?? []).filter(
    (c) => !desired.some((d) => d.type === c.type),
  );
  for (const d of desired) {
    const old = existing?.find((c) => c.type === d.type);
    const statusChanged = old?.status !== d.status;
    const textChanged =
      statusChanged || (old.reason ?? '') !== d.reason || (old.message ?? '') !== d.message;
    out.push({
      type: d.type,
      status: d.status,
      reason: d.reason,
      message: d.message,
      lastTransitionTime: statusChanged ? now : (old.lastTransitionTime ?? now),
      lastHeartbeatTime: textChanged ? now : (old.lastHeartbeatTime ?? now),
    });
  }
  const order: readonly string[] = [
    ConditionTypes.Ready,
    ConditionTypes.Bound,
    ConditionTypes.Running,
  ];
  return out.sort((a, b) => rank(order, a.type) - rank(order, b.type));
}

function rank(order: readonly string[], type: string): number {
  const i = order.indexOf(type);
  return i < 0 ? order.length : i;
}

/** Finds a condition by type. */
export function findCondition(
  conditions: readonly DataVolumeCondition[] | undefined,
  type: string,
): DataVolumeCondition | undefined {
  return conditions?.find((c) => c.type === type);
}
