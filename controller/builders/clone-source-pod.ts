// SPDX-License-Identifier: Apache-2.0
/**
 * The source pod of a network clone (CDI `MakeCloneSourcePodSpec`, `cdi-clone-source`): in the
 * source claim's namespace, mounting that claim read-only, running `cdi clone-source` with CDI's
 * cloner environment. Its client certificate, the upload CA bundle and nothing else come from a
 * Secret of the same name. A pod cannot be owned across namespaces: the labels name the target
 * claim's UID and the clone reconcile deletes pod and Secret when the clone ends.
 */
import type { V1EnvVar, V1Pod, V1Secret } from '@kubernetes/client-node';
import {
  Annotations,
  CLONE_UPLOAD_PATH,
  ForeignAnnotations,
  Labels,
  PodPaths,
  UPLOAD_SERVER_PORT,
  uploadServiceName,
} from '../../common/contract.js';
import { DATA_PATH_NODE_OPTIONS } from '../../common/node-options.js';
import type { KeyAndCert } from '../../common/x509.js';
import type { ClaimRef } from './claim.js';

/** CDI's component name of the source pod. */
export const CLONE_SOURCE_COMPONENT = 'cdi-clone-source';
/** Label carrying the target claim's UID (CDI `cdi.kubevirt.io/hostAssistedSourcePodCloneTarget`-like). */
export const CLONE_TARGET_UID_LABEL = 'cdi.kubevirt.io/cloneTargetUID';
/** Annotation naming the target claim (`<namespace>/<name>`), for the reconcile to find it. */
export const CLONE_TARGET_ANNOTATION = 'cdi.kubevirt.io/cloneTarget';
/** Where CDI's cloner mounts a filesystem source. */
export const CLONER_MOUNT_PATH = '/var/run/cdi/clone/source';
const SOURCE_VOLUME = 'cdi-clone-source';
const QEMU_UID = 107;

/** CDI's source pod name for a target claim. */
export function cloneSourcePodName(targetUid: string): string {
  return `${targetUid}-source-pod`;
}

/** Inputs of {@link buildCloneSourcePod}. */
export interface CloneSourcePodInput {
  readonly name: string;
  readonly source: ClaimRef;
  readonly sourceBlock: boolean;
  readonly target: { readonly namespace: string; readonly name: string; readonly uid: string };
  /** The upload Service's cluster IP, dialled directly (no cluster DNS needed). */
  readonly serviceIp: string;
  readonly ownerUid: string;
  readonly image: string;
  readonly pullPolicy: string;
  readonly preallocation: boolean;
}

function fromSecret(name: string, secret: string, key: string): V1EnvVar {
  return { name, valueFrom: { secretKeyRef: { name: secret, key } } };
}

/** Builds the source pod (see the module comment). */
export function buildCloneSourcePod(input: CloneSourcePodInput): V1Pod {
  const { source, target, name } = input;
  const service = uploadServiceName(target.name);
  const url = `https://${service}.${target.namespace}.svc:${UPLOAD_SERVER_PORT}${CLONE_UPLOAD_PATH}`;
  const mount = input.sourceBlock ? PodPaths.CloneSourceDevice : CLONER_MOUNT_PATH;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: source.namespace,
      labels: {
        [Labels.App]: Labels.AppValue,
        [Labels.Component]: CLONE_SOURCE_COMPONENT,
        [CLONE_TARGET_UID_LABEL]: target.uid,
      },
      annotations: {
        [Annotations.CreatedByController]: 'yes',
        [CLONE_TARGET_ANNOTATION]: `${target.namespace}/${target.name}`,
        [ForeignAnnotations.IstioInject]: 'false',
        [ForeignAnnotations.LinkerdInject]: 'disabled',
      },
    },
    spec: {
      restartPolicy: 'OnFailure',
      enableServiceLinks: false,
      containers: [
        {
          name: CLONE_SOURCE_COMPONENT,
          image: input.image,
          imagePullPolicy: input.pullPolicy,
          command: ['cdi', 'clone-source'],
          env: [
            fromSecret('CLIENT_KEY', name, 'tls.key'),
            fromSecret('CLIENT_CERT', name, 'tls.crt'),
            fromSecret('SERVER_CA_CERT', name, 'ca.crt'),
            { name: 'UPLOAD_URL', value: url },
            { name: 'UPLOAD_SERVER_ADDRESS', value: input.serviceIp },
            { name: 'OWNER_UID', value: input.ownerUid },
            { name: 'PREALLOCATION', value: String(input.preallocation) },
            { name: 'VOLUME_MODE', value: input.sourceBlock ? 'block' : 'filesystem' },
            { name: 'MOUNT_POINT', value: mount },
            { name: 'NODE_OPTIONS', value: DATA_PATH_NODE_OPTIONS },
          ],
          terminationMessagePath: PodPaths.TerminationLog,
          terminationMessagePolicy: 'FallbackToLogsOnError',
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
            runAsNonRoot: true,
            runAsUser: QEMU_UID,
          },
          ...(input.sourceBlock
            ? { volumeDevices: [{ name: SOURCE_VOLUME, devicePath: mount }] }
            : { volumeMounts: [{ name: SOURCE_VOLUME, mountPath: mount, readOnly: true }] }),
        },
      ],
      volumes: [
        {
          name: SOURCE_VOLUME,
          persistentVolumeClaim: { claimName: source.name, readOnly: true },
        },
      ],
      securityContext: {
        fsGroup: QEMU_UID,
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      },
    },
  };
}

/** The source pod's Secret: its client certificate and the CA that signs upload servers. */
export function buildCloneSourceSecret(
  name: string,
  namespace: string,
  targetUid: string,
  material: KeyAndCert & { readonly serverCaPem: string },
): V1Secret {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name,
      namespace,
      labels: {
        [Labels.App]: Labels.AppValue,
        [Labels.Component]: CLONE_SOURCE_COMPONENT,
        [CLONE_TARGET_UID_LABEL]: targetUid,
      },
    },
    data: {
      'tls.key': b64(material.keyPem),
      'tls.crt': b64(material.certPem),
      'ca.crt': b64(material.serverCaPem),
    },
  };
}
