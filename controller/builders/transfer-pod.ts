// SPDX-License-Identifier: Apache-2.0
/**
 * What importer and upload server pods share (CDI's transfer pods): owned by their claim, run as
 * qemu (uid 107) with a restricted security context, `restartPolicy: OnFailure`, the claim at
 * `/data` or as the block device `/dev/cdi-block-volume`, no service-mesh sidecars, the claim's
 * priority class and service account, and the data-path node options (common/node-options.ts).
 * The root filesystem is read-only: what the process writes goes to the claim, the scratch claim,
 * or `/tmp` (an emptyDir: spill files when the target is a block device). Each builder supplies
 * its container and extra volumes. Pure.
 */
import type {
  V1Container,
  V1OwnerReference,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodSpec,
  V1Volume,
  V1VolumeDevice,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { Annotations, ForeignAnnotations, PodPaths } from '../../common/contract.js';
import { DATA_PATH_NODE_OPTIONS } from '../../common/node-options.js';
import type { NodePlacement } from '../cdi/types.js';
import { annotation, isBlock } from './claim.js';

/** CDI's non-root user and group inside transfer pods. */
const QEMU_UID = 107;
/** The claim's volume in transfer pods. */
const DATA_VOLUME = 'cdi-data-vol';
/** The writable `/tmp` of transfer pods (the root filesystem is read-only). */
const TMP_VOLUME = 'cdi-tmp';
const TMP_DIR = '/tmp';

/** The owner reference of a transfer pod (and its Service and Secret): the claim, as controller. */
export function claimOwnerReference(pvc: V1PersistentVolumeClaim): V1OwnerReference {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    name: pvc.metadata?.name ?? '',
    uid: pvc.metadata?.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Inputs of {@link buildTransferPod}. */
export interface TransferPodInput {
  readonly pvc: V1PersistentVolumeClaim;
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly annotations?: Record<string, string>;
  /** The container without mounts of the claim, security context or termination settings. */
  readonly container: V1Container;
  /** Volumes beyond the claim's, and where the container mounts them. */
  readonly volumes: readonly V1Volume[];
  readonly mounts: readonly V1VolumeMount[];
  /** Raw block devices beyond the claim's (a block clone source). */
  readonly devices?: readonly V1VolumeDevice[];
  /** Containers run before it, and beside it, with the same security context (node pulls). */
  readonly initContainers?: readonly V1Container[];
  readonly sidecars?: readonly V1Container[];
  /** Node selector, tolerations and affinity (the CDI resource's `spec.workload`). */
  readonly placement?: NodePlacement;
}

/**
 * Annotations a claim passes to its transfer pods, and the value used when the claim has none
 * (CDI `allowedAnnotations`; an empty default means "only when the claim sets it").
 */
export const PASSED_POD_ANNOTATIONS: Readonly<Record<string, string>> = {
  [ForeignAnnotations.MultusNetworks]: '',
  [ForeignAnnotations.MultusDefaultNetwork]: '',
  [ForeignAnnotations.IstioInject]: 'false',
  [ForeignAnnotations.LinkerdInject]: 'disabled',
  [Annotations.PriorityClassName]: '',
  [Annotations.ServiceAccountName]: '',
};

/** The passed annotations of a claim, with the defaults (CDI `CopyAllowedAnnotations`). */
export function passedAnnotations(pvc: V1PersistentVolumeClaim): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, fallback] of Object.entries(PASSED_POD_ANNOTATIONS)) {
    const value = pvc.metadata?.annotations?.[key] ?? fallback;
    if (value !== '') out[key] = value;
  }
  return out;
}

/** A container of a transfer pod: CDI's restricted security context and termination message. */
function restricted(container: V1Container): V1Container {
  return {
    ...container,
    terminationMessagePath: PodPaths.TerminationLog,
    terminationMessagePolicy: 'FallbackToLogsOnError',
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      runAsNonRoot: true,
      runAsUser: QEMU_UID,
      readOnlyRootFilesystem: true,
    },
  };
}

/** Assembles a transfer pod around its container (see the module comment). */
export function buildTransferPod(input: TransferPodInput): V1Pod {
  const { pvc } = input;
  const block = isBlock(pvc);
  const container: V1Container = {
    ...restricted(input.container),
    // The data path's own heap settings (only the cdi container runs Node).
    env: [...(input.container.env ?? []), { name: 'NODE_OPTIONS', value: DATA_PATH_NODE_OPTIONS }],
    volumeMounts: [
      ...(block ? [] : [{ name: DATA_VOLUME, mountPath: PodPaths.DataDir }]),
      { name: TMP_VOLUME, mountPath: TMP_DIR },
      ...input.mounts,
    ],
    ...(block || (input.devices ?? []).length > 0
      ? {
          volumeDevices: [
            ...(block ? [{ name: DATA_VOLUME, devicePath: PodPaths.BlockDevice }] : []),
            ...(input.devices ?? []),
          ],
        }
      : {}),
  };
  const priorityClassName = annotation(pvc, Annotations.PriorityClassName);
  const serviceAccountName = annotation(pvc, Annotations.ServiceAccountName);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: input.name,
      namespace: pvc.metadata?.namespace ?? '',
      labels: input.labels,
      annotations: {
        [Annotations.CreatedByController]: 'yes',
        ...passedAnnotations(pvc),
        ...input.annotations,
      },
      ownerReferences: [claimOwnerReference(pvc)],
    },
    spec: {
      restartPolicy: 'OnFailure',
      enableServiceLinks: false,
      ...((input.initContainers ?? []).length > 0
        ? { initContainers: (input.initContainers ?? []).map(restricted) }
        : {}),
      containers: [container, ...(input.sidecars ?? []).map(restricted)],
      volumes: [
        {
          name: DATA_VOLUME,
          persistentVolumeClaim: { claimName: pvc.metadata?.name ?? '', readOnly: false },
        },
        { name: TMP_VOLUME, emptyDir: {} },
        ...input.volumes,
      ],
      securityContext: {
        fsGroup: QEMU_UID,
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      ...(priorityClassName === undefined ? {} : { priorityClassName }),
      ...(serviceAccountName === undefined ? {} : { serviceAccountName }),
      ...placementFields(input.placement),
    },
  };
}

/** The pod spec fields of a placement; empty parts are left out. */
function placementFields(placement: NodePlacement | undefined): Partial<V1PodSpec> {
  const out: Partial<V1PodSpec> = {};
  const selector = placement?.nodeSelector ?? {};
  if (Object.keys(selector).length > 0) out.nodeSelector = { ...selector };
  if ((placement?.tolerations ?? []).length > 0) out.tolerations = placement?.tolerations ?? [];
  if (placement?.affinity !== undefined && Object.keys(placement.affinity).length > 0)
    out.affinity = placement.affinity;
  return out;
}
