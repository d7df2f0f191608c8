// SPDX-License-Identifier: Apache-2.0
/**
 * The upload server of an upload claim, as CDI's `upload-controller.go` builds it
 * (`makeUploadPodSpec`, `makeUploadService`): pod `cdi-upload-<pvc>` running `cdi uploadserver`
 * with CDI's env, the claim at `/data` (or the block device), its TLS Secret at `/etc/tls`, an
 * HTTPS readiness probe on `/healthz`; a Service `cdi-upload-<pvc>` in front of it; and that Secret.
 *
 * Unlike CDI, no scratch claim: the upload server streams qcow2 to raw (ADR 0001), and the
 * Service has a cluster IP (CDI's is headless) so a proxy may reach it without cluster DNS.
 * Pure.
 */
import type {
  V1EnvVar,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';
import {
  Annotations,
  ImporterEnv,
  Labels,
  PodPaths,
  UPLOAD_CLIENT_NAME,
  UPLOAD_SERVER_PORT,
  UploadServerEnv,
  UploadServerPaths,
  uploadServiceName,
} from '../../common/contract.js';
import type { KeyAndCert } from '../../common/x509.js';
import { filesystemOverheadFor, type ControllerSettings, type EffectiveConfig } from '../config.js';
import { annotation, isBlock, ownerUid } from './claim.js';
import { buildTransferPod, claimOwnerReference } from './transfer-pod.js';
import { uploadPodName } from './naming.js';

/** The upload server container's name. */
export const UPLOAD_CONTAINER = 'cdi-upload-server';
/** `cdi.kubevirt.io` label value of upload server pods. */
const UPLOAD_COMPONENT = 'cdi-upload-server';
/** Label naming the claim (by UID) a pod uploads into. */
const UPLOAD_TARGET_LABEL = 'cdi.kubevirt.io/uploadTarget';
/** Label the upload Service selects its pod by. */
const SERVICE_LABEL = 'service';
/** Lets OVN-Kubernetes' default network policy admit the proxy's connections. */
const OVN_OPEN_PORTS = 'k8s.ovn.org/open-default-ports';

/** Inputs of {@link buildUploadPod}. */
export interface UploadPodInput {
  readonly pvc: V1PersistentVolumeClaim;
  readonly config: EffectiveConfig;
  readonly settings: ControllerSettings;
}

function env(name: string, value: string): V1EnvVar {
  return { name, value };
}

/** CDI's upload server environment for a claim. */
export function uploadServerEnv(input: UploadPodInput): V1EnvVar[] {
  const { pvc, config } = input;
  const block = isBlock(pvc);
  return [
    env(UploadServerEnv.TlsKeyFile, UploadServerPaths.Key),
    env(UploadServerEnv.TlsCertFile, UploadServerPaths.Cert),
    env(UploadServerEnv.ClientCertFile, UploadServerPaths.ClientCa),
    // A network clone's target accepts its source pod only (CDI `AnnUploadClientName`).
    env(
      UploadServerEnv.ClientName,
      annotation(pvc, Annotations.UploadClientName) ?? UPLOAD_CLIENT_NAME,
    ),
    env(
      UploadServerEnv.FilesystemOverhead,
      block ? '0' : String(filesystemOverheadFor(config, pvc.spec?.storageClassName)),
    ),
    env(UploadServerEnv.ImageSize, pvc.spec?.resources?.requests?.['storage'] ?? ''),
    env(
      UploadServerEnv.Preallocation,
      String(annotation(pvc, Annotations.PreallocationRequested) === 'true'),
    ),
    env(
      UploadServerEnv.Destination,
      block ? PodPaths.BlockDevice : `${PodPaths.DataDir}/${PodPaths.DiskImageName}`,
    ),
    // Ours: labels the progress metric on /metrics, which the controller scrapes.
    env(ImporterEnv.OwnerUid, ownerUid(pvc)),
  ];
}

/** Labels of a claim's upload server pod. */
function podLabels(pvc: V1PersistentVolumeClaim): Record<string, string> {
  return {
    ...pvc.metadata?.labels,
    [Labels.App]: Labels.AppValue,
    [Labels.Component]: UPLOAD_COMPONENT,
    [UPLOAD_TARGET_LABEL]: pvc.metadata?.uid ?? '',
    [SERVICE_LABEL]: uploadServiceName(pvc.metadata?.name ?? ''),
  };
}

/** Builds the upload server pod of a claim. */
export function buildUploadPod(input: UploadPodInput): V1Pod {
  const { pvc, settings } = input;
  const pvcName = pvc.metadata?.name ?? '';
  const resources = input.config.status.defaultPodResourceRequirements ?? {};
  return buildTransferPod({
    pvc,
    ...(input.config.workload === undefined ? {} : { placement: input.config.workload }),
    name: uploadPodName(pvcName),
    labels: podLabels(pvc),
    annotations: {
      [OVN_OPEN_PORTS]: JSON.stringify([{ protocol: 'tcp', port: UPLOAD_SERVER_PORT }]),
    },
    container: {
      name: UPLOAD_CONTAINER,
      image: settings.uploadServerImage,
      imagePullPolicy: settings.pullPolicy,
      command: ['cdi', 'uploadserver'],
      env: uploadServerEnv(input),
      ports: [{ name: 'uploadserver', containerPort: UPLOAD_SERVER_PORT, protocol: 'TCP' }],
      readinessProbe: {
        httpGet: { path: '/healthz', port: UPLOAD_SERVER_PORT, scheme: 'HTTPS' },
        initialDelaySeconds: 2,
        periodSeconds: 5,
      },
      resources: { ...resources },
    },
    volumes: [
      { name: 'tls', secret: { secretName: uploadServiceName(pvcName), defaultMode: 0o400 } },
    ],
    mounts: [{ name: 'tls', mountPath: UploadServerPaths.Dir, readOnly: true }],
  });
}

/** Builds the Service in front of a claim's upload server. */
export function buildUploadService(pvc: V1PersistentVolumeClaim): V1Service {
  const name = uploadServiceName(pvc.metadata?.name ?? '');
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: pvc.metadata?.namespace ?? '',
      labels: { [Labels.App]: Labels.AppValue, [Labels.Component]: UPLOAD_COMPONENT },
      annotations: { [Annotations.CreatedByController]: 'yes' },
      ownerReferences: [claimOwnerReference(pvc)],
    },
    spec: {
      type: 'ClusterIP',
      selector: { [SERVICE_LABEL]: name },
      ports: [
        {
          name: 'uploadserver',
          protocol: 'TCP',
          port: UPLOAD_SERVER_PORT,
          targetPort: UPLOAD_SERVER_PORT,
        },
      ],
    },
  };
}

/** What the upload server Secret holds: its key and certificate, and the proxy's client CA. */
export interface UploadServerTlsMaterial extends KeyAndCert {
  readonly clientCaPem: string;
}

/** Builds the TLS Secret of a claim's upload server (`tls.key`, `tls.crt`, `ca.crt`). */
export function buildUploadSecret(
  pvc: V1PersistentVolumeClaim,
  material: UploadServerTlsMaterial,
): V1Secret {
  const b64 = (text: string): string => Buffer.from(text).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: {
      name: uploadServiceName(pvc.metadata?.name ?? ''),
      namespace: pvc.metadata?.namespace ?? '',
      labels: { [Labels.App]: Labels.AppValue, [Labels.Component]: UPLOAD_COMPONENT },
      ownerReferences: [claimOwnerReference(pvc)],
    },
    data: {
      'tls.key': b64(material.keyPem),
      'tls.crt': b64(material.certPem),
      'ca.crt': b64(material.clientCaPem),
    },
  };
}
