// SPDX-License-Identifier: Apache-2.0
/**
 * The importer pod of an import claim, as CDI's `import-controller.go` (`makeImporterPodSpec`,
 * `makeImportEnv`) builds it: `importer-<pvc>`, owned by the claim, `restartPolicy: OnFailure`,
 * CDI's env vars from the claim's annotations, the claim mounted at `/data` (or as the block device
 * `/dev/cdi-block-volume`), optional scratch, CA and header volumes, the metrics port and the
 * termination message path; a registry import the node pulls gets node-pull.ts's containers. Pure.
 */
import type {
  V1EnvVar,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Volume,
  V1VolumeDevice,
  V1VolumeMount,
} from '@kubernetes/client-node';
import {
  Annotations,
  ContentTypes,
  ImporterEnv,
  Labels,
  METRICS_PORT,
  PodPaths,
  PullMethods,
  SourceKinds,
} from '../../common/contract.js';
import { filesystemOverheadFor, type ControllerSettings, type EffectiveConfig } from '../config.js';
import { annotation, cloneRequestOf, isBlock, ownerUid } from './claim.js';
import { importerPodName, scratchPvcName } from './naming.js';
import { buildTransferPod } from './transfer-pod.js';
import {
  isNodePull,
  NODE_PULL_ENV,
  nodePullImage,
  nodePullParts,
  nodePullPlacement,
  SHARED_VOLUME,
} from './node-pull.js';
import type { NodePlacement } from '../cdi/types.js';

/** Where secret extra headers are mounted (CDI `common.go`). */
const EXTRA_HEADERS_DIR = '/extraheaders';
/** Where the proxy CA ConfigMap is mounted. */
const PROXY_CERT_DIR = '/proxycerts/';
/** The clone source claim's volume in importer pods. */
const CLONE_SOURCE_VOLUME = 'cdi-clone-source';
/** The gcs source's key Secret volume (CDI `SecretVolName`). */
const GCS_SECRET_VOLUME = 'cdi-secret-vol';

/** Inputs of {@link buildImporterPod}. */
export interface ImporterPodInput {
  readonly pvc: V1PersistentVolumeClaim;
  readonly config: EffectiveConfig;
  readonly settings: ControllerSettings;
  /** Mount `<pvc>-scratch` at `/scratch`. */
  readonly scratch: boolean;
  /**
   * The source claim of a clone target (`k8s.io/CloneRequest`), from the cache: mounted
   * read-only at `/source` (filesystem) or as the device `/dev/cdi-clone-source` (block).
   */
  readonly cloneSource?: V1PersistentVolumeClaim;
}

/**
 * The claim's source kind: `pvc` for a clone target, else the annotation, `http` when missing or
 * unknown (as CDI does).
 */
export function importSource(pvc: V1PersistentVolumeClaim): string {
  if (cloneRequestOf(pvc) !== undefined) return SourceKinds.Pvc;
  const s = annotation(pvc, Annotations.Source);
  const known: readonly string[] = [
    SourceKinds.Http,
    SourceKinds.S3,
    SourceKinds.Registry,
    SourceKinds.None,
    SourceKinds.Gcs,
  ];
  return s !== undefined && known.includes(s) ? s : SourceKinds.Http;
}

function insecureRegistry(endpoint: string | undefined, registries: readonly string[]): boolean {
  if (endpoint === undefined || !endpoint.startsWith('docker://')) return false;
  try {
    const host = new URL(endpoint.replace(/^docker:/, 'http:')).host;
    return registries.includes(host);
  } catch {
    return false;
  }
}

function env(name: string, value: string): V1EnvVar {
  return { name, value };
}

/** CDI's importer environment for a claim (`makeImportEnv`). */
export function importerEnv(input: ImporterPodInput): V1EnvVar[] {
  const { pvc, config } = input;
  const source = importSource(pvc);
  const endpoint =
    source === SourceKinds.Pvc
      ? cloneSourceEndpoint(input.cloneSource)
      : annotation(pvc, Annotations.Endpoint);
  const block = isBlock(pvc);
  const proxy = config.status.importProxy;
  const insecure =
    (source === SourceKinds.Http && annotation(pvc, Annotations.InsecureSkipVerify) === 'true') ||
    insecureRegistry(endpoint, config.insecureRegistries);
  const nodePull = isNodePull(pvc, source);
  const vars: V1EnvVar[] = [
    env(ImporterEnv.Source, source),
    env(ImporterEnv.Endpoint, endpoint ?? ''),
    env(ImporterEnv.ContentType, annotation(pvc, Annotations.ContentType) ?? ContentTypes.Kubevirt),
    env(ImporterEnv.ImageSize, pvc.spec?.resources?.requests?.['storage'] ?? ''),
    env(ImporterEnv.OwnerUid, ownerUid(pvc)),
    env(
      ImporterEnv.FilesystemOverhead,
      block ? '0' : String(filesystemOverheadFor(config, pvc.spec?.storageClassName)),
    ),
    env(ImporterEnv.InsecureTls, String(insecure)),
    env(
      ImporterEnv.Preallocation,
      String(annotation(pvc, Annotations.PreallocationRequested) === 'true'),
    ),
    env(ImporterEnv.HttpProxy, proxy?.HTTPProxy ?? ''),
    env(ImporterEnv.HttpsProxy, proxy?.HTTPSProxy ?? ''),
    env(ImporterEnv.NoProxy, proxy?.noProxy ?? ''),
  ];
  const secret = annotation(pvc, Annotations.SecretName);
  // A gcs secret is a key file mounted at /google; the others are access key pairs (CDI).
  if (source === SourceKinds.Gcs && input.settings.gcsEndpoint !== undefined)
    vars.push(env(ImporterEnv.StorageEmulatorHost, input.settings.gcsEndpoint));
  if (secret !== undefined && source === SourceKinds.Gcs) {
    vars.push(env(ImporterEnv.GoogleCredentialsFile, PodPaths.GoogleCredentialFile));
  } else if (secret !== undefined) {
    vars.push(
      {
        name: ImporterEnv.AccessKeyId,
        valueFrom: { secretKeyRef: { name: secret, key: 'accessKeyId' } },
      },
      {
        name: ImporterEnv.SecretKey,
        valueFrom: { secretKeyRef: { name: secret, key: 'secretKey' } },
      },
    );
  }
  if (annotation(pvc, Annotations.CertConfigMap) !== undefined)
    vars.push(env(ImporterEnv.CertDir, PodPaths.CertDir));
  if ((proxy?.trustedCAProxy ?? '') !== '')
    vars.push(env(ImporterEnv.ProxyCertDir, PROXY_CERT_DIR));
  const checksum = annotation(pvc, Annotations.Checksum);
  if (checksum !== undefined) vars.push(env(ImporterEnv.Checksum, checksum));
  extraHeaders(pvc).forEach((h, i) => vars.push(env(`${ImporterEnv.ExtraHeaderPrefix}${i}`, h)));
  if (source === SourceKinds.Registry) {
    vars.push(
      env(
        ImporterEnv.PullMethod,
        annotation(pvc, Annotations.RegistryImportMethod) ?? PullMethods.Pod,
      ),
    );
    const arch = annotation(pvc, Annotations.RegistryImageArchitecture);
    if (arch !== undefined) vars.push(env(ImporterEnv.RegistryImageArchitecture, arch));
  }
  if (annotation(pvc, Annotations.RequiresDirectIo) === 'true')
    vars.push(env(ImporterEnv.CacheMode, 'TRYNONE'));
  if (!nodePull) return vars;
  // The importer reads the server container over HTTP; the rest of the environment stays.
  const overridden = vars.map((v) =>
    NODE_PULL_ENV[v.name] === undefined ? v : env(v.name, NODE_PULL_ENV[v.name] ?? ''),
  );
  const missing = Object.entries(NODE_PULL_ENV).filter(([k]) => !vars.some((v) => v.name === k));
  return [...overridden, ...missing.map(([k, v]) => env(k, v))];
}

/** Where the importer reads a clone source: the device of a block claim, else its `disk.img`. */
export function cloneSourceEndpoint(source: V1PersistentVolumeClaim | undefined): string {
  return source !== undefined && isBlock(source)
    ? PodPaths.CloneSourceDevice
    : PodPaths.CloneSourceImage;
}

/** The clone source volume, mounted read-only (a clone never writes its source). */
function cloneVolumes(input: ImporterPodInput): {
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
  devices: V1VolumeDevice[];
} {
  const ref = cloneRequestOf(input.pvc);
  if (ref === undefined) return { volumes: [], mounts: [], devices: [] };
  const volume: V1Volume = {
    name: CLONE_SOURCE_VOLUME,
    persistentVolumeClaim: { claimName: ref.name, readOnly: true },
  };
  const block = input.cloneSource !== undefined && isBlock(input.cloneSource);
  return block
    ? {
        volumes: [volume],
        mounts: [],
        devices: [{ name: CLONE_SOURCE_VOLUME, devicePath: PodPaths.CloneSourceDevice }],
      }
    : {
        volumes: [volume],
        mounts: [{ name: CLONE_SOURCE_VOLUME, mountPath: PodPaths.CloneSourceDir, readOnly: true }],
        devices: [],
      };
}

/** Annotations with a prefix, in index order (`<prefix>.0`, `<prefix>.1`, ...). */
function prefixed(pvc: V1PersistentVolumeClaim, prefix: string): string[] {
  return Object.entries(pvc.metadata?.annotations ?? {})
    .filter(([k]) => k.startsWith(prefix))
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([, v]) => v);
}

/** The extra header lines of a claim. */
export function extraHeaders(pvc: V1PersistentVolumeClaim): string[] {
  return prefixed(pvc, `${Annotations.ExtraHeadersPrefix}`);
}

function volumes(input: ImporterPodInput): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  const { pvc } = input;
  const name = pvc.metadata?.name ?? '';
  const vols: V1Volume[] = [];
  const mounts: V1VolumeMount[] = [];
  if (input.scratch) {
    vols.push({
      name: 'cdi-scratch-vol',
      persistentVolumeClaim: { claimName: scratchPvcName(name), readOnly: false },
    });
    mounts.push({ name: 'cdi-scratch-vol', mountPath: PodPaths.ScratchDir });
  }
  const cert = annotation(pvc, Annotations.CertConfigMap);
  if (cert !== undefined) {
    vols.push({ name: 'cdi-cert-vol', configMap: { name: cert } });
    mounts.push({ name: 'cdi-cert-vol', mountPath: PodPaths.CertDir });
  }
  const proxyCa = input.config.status.importProxy?.trustedCAProxy ?? '';
  if (proxyCa !== '') {
    vols.push({ name: 'cdi-proxy-cert-vol', configMap: { name: proxyCa } });
    mounts.push({ name: 'cdi-proxy-cert-vol', mountPath: PROXY_CERT_DIR });
  }
  const secret = annotation(pvc, Annotations.SecretName);
  if (secret !== undefined && importSource(pvc) === SourceKinds.Gcs) {
    vols.push({ name: GCS_SECRET_VOLUME, secret: { secretName: secret } });
    mounts.push({ name: GCS_SECRET_VOLUME, mountPath: PodPaths.GoogleCredentialDir });
  }
  prefixed(pvc, Annotations.SecretExtraHeadersPrefix).forEach((secretName, i) => {
    vols.push({ name: `cdi-secret-extra-headers-vol-${i}`, secret: { secretName } });
    mounts.push({
      name: `cdi-secret-extra-headers-vol-${i}`,
      mountPath: `${EXTRA_HEADERS_DIR}/${i}`,
    });
  });
  return { volumes: vols, mounts };
}

/** The workload's placement; a node pull also selects the image's architecture. */
function placementOf(input: ImporterPodInput, nodePull: boolean): { placement?: NodePlacement } {
  const placement = nodePull
    ? nodePullPlacement(
        input.config.workload,
        annotation(input.pvc, Annotations.RegistryImageArchitecture),
      )
    : input.config.workload;
  return placement === undefined ? {} : { placement };
}

/** Builds the importer pod of a claim. */
export function buildImporterPod(input: ImporterPodInput): V1Pod {
  const { pvc, settings } = input;
  const { volumes: vols, mounts } = volumes(input);
  const clone = cloneVolumes(input);
  const resources = input.config.status.defaultPodResourceRequirements ?? {};
  const nodePull = isNodePull(pvc, importSource(pvc))
    ? nodePullParts({
        importerImage: settings.importerImage,
        pullPolicy: settings.pullPolicy,
        diskImage: nodePullImage(annotation(pvc, Annotations.Endpoint) ?? ''),
        resources,
      })
    : undefined;
  const shared = nodePull === undefined ? [] : [{ name: SHARED_VOLUME, mountPath: '/shared' }];
  return buildTransferPod({
    pvc,
    ...placementOf(input, nodePull !== undefined),
    name: importerPodName(pvc.metadata?.name ?? ''),
    labels: {
      ...pvc.metadata?.labels,
      [Labels.App]: Labels.AppValue,
      [Labels.Component]: 'importer',
      [Labels.Prometheus]: 'true',
    },
    container: {
      name: 'importer',
      image: settings.importerImage,
      imagePullPolicy: settings.pullPolicy,
      command: ['cdi', 'importer'],
      env: importerEnv(input),
      ports: [{ name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' }],
      resources: { ...resources },
    },
    volumes: [...vols, ...clone.volumes, ...(nodePull === undefined ? [] : [nodePull.volume])],
    mounts: [...mounts, ...clone.mounts, ...shared],
    devices: clone.devices,
    ...(nodePull === undefined
      ? {}
      : { initContainers: nodePull.initContainers, sidecars: nodePull.sidecars }),
  });
}
