// SPDX-License-Identifier: Apache-2.0
/**
 * The source side of a network clone (CDI's host-assisted clone across namespaces): a target
 * claim with `k8s.io/CloneRequest` naming a claim in another namespace is an upload target (the
 * upload reconcile runs its `cdi-upload-<pvc>` server); this decides the source pod
 * `<target uid>-source-pod` in the source namespace that streams the claim to that server.
 *
 * Sequence: target bound and its upload server ready → if a pod other than ours mounts the
 * source, wait with CDI's `CloneSourceInUse` event and look again shortly → else the source
 * pod's Secret (client certificate named as the target requires) and the pod → the upload server
 * exits "Clone Complete", the upload reconcile marks the target Succeeded → pod and Secret are
 * deleted (also when the target claim goes away or stops being a clone target). A failed source
 * pod is deleted and made again. Pure: the caller reads the caches and the pods using the source.
 */
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { Annotations, uploadServiceName } from '../../common/contract.js';
import { CDI_GROUP, CDI_VERSION } from '../../common/api/datavolume.js';
import { EventReasons, PodPhases } from '../../common/api/phases.js';
import type { Action, EventTarget } from '../actions.js';
import type { ControllerSettings } from '../config.js';
import { annotation, cloneRequestOf, isBlock, ownerUid, type ClaimRef } from '../builders/claim.js';
import { buildCloneSourcePod, cloneSourcePodName } from '../builders/clone-source-pod.js';

/** How often a clone whose source is in use looks again (CDI requeues, too). */
export const SOURCE_IN_USE_RECHECK_MS = 5000;

/** Inputs of {@link decideCloneSource}. */
export interface CloneSourceInput {
  readonly target: V1PersistentVolumeClaim;
  /** The source claim from the cache. */
  readonly source: V1PersistentVolumeClaim | undefined;
  /** Our source pod from the cache, if any. */
  readonly sourcePod: V1Pod | undefined;
  /** Pods other than ours that mount the source claim and have not finished (`ns/name`). */
  readonly podsUsingSource: readonly string[];
  /** The cluster IP of the target's upload Service, once it has one. */
  readonly serviceIp: string | undefined;
  readonly settings: ControllerSettings;
}

/** The source of a network clone target, or undefined for any other claim. */
export function networkCloneSource(pvc: V1PersistentVolumeClaim): ClaimRef | undefined {
  const ref = cloneRequestOf(pvc);
  if (ref === undefined || ref.namespace === (pvc.metadata?.namespace ?? '')) return undefined;
  return Annotations.UploadTarget in (pvc.metadata?.annotations ?? {}) ? ref : undefined;
}

/** The DataVolume owning the target (events go there, as CDI's do), else the claim. */
function eventTarget(pvc: V1PersistentVolumeClaim): EventTarget {
  const owner = (pvc.metadata?.ownerReferences ?? []).find((o) => o.kind === 'DataVolume');
  const namespace = pvc.metadata?.namespace ?? '';
  return owner === undefined
    ? {
        kind: 'PersistentVolumeClaim',
        apiVersion: 'v1',
        namespace,
        name: pvc.metadata?.name ?? '',
        uid: pvc.metadata?.uid ?? '',
      }
    : {
        kind: 'DataVolume',
        apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
        namespace,
        name: owner.name,
        uid: owner.uid,
      };
}

/**
 * A clone whose source another pod mounts writable waits (network clones and clones within a
 * namespace alike): CDI's Warning per pod, and another look shortly.
 */
export function sourceInUse(
  target: V1PersistentVolumeClaim,
  source: string,
  pods: readonly string[],
): Action[] {
  return [
    ...pods.map((pod): Action => ({
      kind: 'event',
      target: eventTarget(target),
      type: 'Warning',
      reason: EventReasons.CloneSourceInUse,
      message: `pod ${pod} using PersistentVolumeClaim ${source}`,
    })),
    { kind: 'requeue', afterMs: SOURCE_IN_USE_RECHECK_MS },
  ];
}

function removal(namespace: string, name: string, pod: V1Pod | undefined): Action[] {
  return [
    ...(pod === undefined || pod.metadata?.deletionTimestamp !== undefined
      ? []
      : [{ kind: 'deletePod', namespace, name } as const]),
    { kind: 'deleteSecret', namespace, name },
  ];
}

/** Decides the source pod of one network clone target (see the module comment). */
export function decideCloneSource(input: CloneSourceInput): Action[] {
  const { target, sourcePod } = input;
  const ref = networkCloneSource(target);
  const name = cloneSourcePodName(target.metadata?.uid ?? '');
  if (ref === undefined) return [];
  const done =
    target.metadata?.deletionTimestamp !== undefined ||
    annotation(target, Annotations.PodPhase) === PodPhases.Succeeded;
  if (done) return sourcePod === undefined ? [] : removal(ref.namespace, name, sourcePod);
  if (sourcePod !== undefined) {
    // A pod that gave up (not restarting by itself) is replaced; a running one is left alone.
    return sourcePod.status?.phase === PodPhases.Failed
      ? [{ kind: 'deletePod', namespace: ref.namespace, name }]
      : [];
  }
  const ready = annotation(target, Annotations.PodReady) === 'true';
  if (!ready || input.serviceIp === undefined || input.source === undefined) return [];
  if (input.podsUsingSource.length > 0) return sourceInUse(target, ref.name, input.podsUsingSource);
  const pod = buildCloneSourcePod({
    name,
    source: ref,
    sourceBlock: isBlock(input.source),
    target: {
      namespace: target.metadata?.namespace ?? '',
      name: target.metadata?.name ?? '',
      uid: target.metadata?.uid ?? '',
    },
    serviceIp: input.serviceIp,
    ownerUid: ownerUid(target),
    image: input.settings.importerImage,
    pullPolicy: input.settings.pullPolicy,
    preallocation: annotation(target, Annotations.PreallocationRequested) === 'true',
  });
  return [{ kind: 'createCloneSourcePod', pod, target, clientName: clientNameOf(target) }];
}

/** The client certificate name the target's upload server requires. */
export function clientNameOf(target: V1PersistentVolumeClaim): string {
  return (
    annotation(target, Annotations.UploadClientName) ??
    uploadServiceName(target.metadata?.name ?? '')
  );
}
