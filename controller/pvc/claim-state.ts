// SPDX-License-Identifier: Apache-2.0
/**
 * What the import and upload reconciles share: the claim annotations they write (only the ones
 * that changed, as one merge patch), the running-condition annotations read off a transfer pod,
 * and the claim as an event target. Pure.
 */
import type { V1ContainerStatus, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { Annotations } from '../../common/contract.js';
import { ConditionMessages, ConditionReasons } from '../../common/api/phases.js';
import type { Action, EventTarget } from '../actions.js';

/** Kubelet waiting reasons that mean the image cannot be pulled. */
const IMAGE_PULL_REASONS: ReadonlySet<string> = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
]);

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

/** A `patchPvc` of the annotations and labels that differ, or nothing. */
export function patch(
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

/** The three running-condition annotations. */
export function runningAnns(
  running: boolean,
  reason: string,
  message: string,
): Record<string, string> {
  return {
    [Annotations.RunningCondition]: String(running),
    [Annotations.RunningConditionReason]: reason,
    [Annotations.RunningConditionMessage]: message,
  };
}

/** The status of the pod's container named `name`, else its first. */
export function containerStatus(pod: V1Pod, name: string): V1ContainerStatus | undefined {
  const all = pod.status?.containerStatuses ?? [];
  return all.find((c) => c.name === name) ?? all[0];
}

/**
 * The running-condition annotations (and schedulability) of a pod that is not finished. `failure`
 * is the judged termination of its last failed run, if any.
 */
export function runningState(
  pod: V1Pod,
  cs: V1ContainerStatus | undefined,
  failedReason: string | undefined,
  failure: { readonly message: string } | undefined,
): Record<string, string | null> {
  const waiting = cs?.state?.waiting;
  const schedulable = { [Annotations.PodSchedulable]: null };
  // Any container's image, as CDI looks at them all: a node pull's disk image is the server's.
  const pullFailed = [cs, ...(pod.status?.containerStatuses ?? [])].find(
    (s) => s?.started !== true && IMAGE_PULL_REASONS.has(s?.state?.waiting?.reason ?? ''),
  );
  if (pullFailed !== undefined) {
    const message = `failed to pull image: ${pullFailed.image}`;
    return { ...runningAnns(false, ConditionReasons.ImagePullFailed, message), ...schedulable };
  }
  if (cs?.state?.running !== undefined) {
    // CDI clears the message while the pod runs, so a retrying import (most of its time running
    // its next attempt) showed an empty message with the cause only in an event. A restarted pod
    // keeps the termination message of its last failure until it succeeds.
    return {
      ...runningAnns(true, ConditionReasons.PodRunning, failure?.message ?? ''),
      ...schedulable,
    };
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
