// SPDX-License-Identifier: Apache-2.0
/**
 * The controller's configuration: its own settings from the environment (parsed once, here),
 * and the effective CDIConfig (what `CDIConfig.status` shows and what reconciles use), computed
 * purely from the spec and the storage classes that exist (CDI `config-controller.go`).
 */
import type {
  CdiConfigSpec,
  CdiConfigStatus,
  ClaimPropertySet,
  ResourceRequirements,
} from '../common/api/datavolume.js';
import { isValidPercent } from '../common/config-validate.js';
import { ControllerEnv } from '../common/contract.js';
import type { NodePlacement } from './cdi/types.js';
import { uploadProxyUrl, type IngressLike, type RouteLike } from './upload-proxy-url.js';
import { CdiError, ErrorCodes } from '../common/errors.js';

/** Settings of the controller process. */
export interface ControllerSettings {
  /** Image of importer pods (`IMPORTER_IMAGE`). */
  readonly importerImage: string;
  /** Image of upload server pods (`UPLOADSERVER_IMAGE`, else the importer image). */
  readonly uploadServerImage: string;
  /** Namespace of the controller (`POD_NAMESPACE`): where its Lease lives. */
  readonly namespace: string;
  /** Importer pods' `imagePullPolicy` (`PULL_POLICY`). */
  readonly pullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Importer log verbosity passed as `-v=N` (`VERBOSITY`). */
  readonly verbosity: number;
  /** Identity in the leader Lease (`POD_NAME`, else host name and pid). */
  readonly identity: string;
  /** Address of `/metrics`, `/healthz` and `/readyz` (`METRICS_BIND_ADDRESS`, default all). */
  readonly metricsBindAddress: string;
  /** Their port (`METRICS_PORT`, default 8080; 0 picks a free one). */
  readonly metricsPort: number;
  /** Passed to the importer pods of `gcs` sources (`STORAGE_EMULATOR_HOST`), when set. */
  readonly gcsEndpoint?: string;
}

/** Port of the controller's metrics and probes when `METRICS_PORT` is unset (CDI's). */
export const DEFAULT_METRICS_PORT = 8080;

/** Default image of transfer pods when `IMPORTER_IMAGE` is not set (deploy/images/Dockerfile). */
export const DEFAULT_IMPORTER_IMAGE = 'cdi-ts/cdi:latest';

/** Reads {@link ControllerSettings} from an environment; throws `CDI_INVALID_CONFIG` listing every bad variable. */
export function parseControllerSettings(
  env: Readonly<Record<string, string | undefined>>,
  fallbackIdentity: string,
): ControllerSettings {
  const problems: string[] = [];
  const pullPolicy = env[ControllerEnv.PullPolicy] ?? 'IfNotPresent';
  if (pullPolicy !== 'Always' && pullPolicy !== 'IfNotPresent' && pullPolicy !== 'Never') {
    problems.push(
      `PULL_POLICY must be Always, IfNotPresent or Never, got ${JSON.stringify(pullPolicy)}`,
    );
  }
  const verbosityText = env[ControllerEnv.Verbosity] ?? '1';
  const verbosity = Number(verbosityText);
  if (!Number.isInteger(verbosity) || verbosity < 0) {
    problems.push(`VERBOSITY must be a non-negative integer, got ${JSON.stringify(verbosityText)}`);
  }
  const portText = env[ControllerEnv.MetricsPort] ?? String(DEFAULT_METRICS_PORT);
  const metricsPort = Number(portText);
  if (!/^\d+$/.test(portText) || metricsPort > 65535) {
    problems.push(`METRICS_PORT must be a port number 0-65535, got ${JSON.stringify(portText)}`);
  }
  if (problems.length > 0) {
    throw new CdiError(
      ErrorCodes.InvalidConfig,
      `invalid controller environment: ${problems.join('; ')}`,
    );
  }
  const importerImage = nonEmpty(env[ControllerEnv.ImporterImage]) ?? DEFAULT_IMPORTER_IMAGE;
  const gcsEndpoint = nonEmpty(env[ControllerEnv.GcsEndpoint]);
  return Object.freeze({
    importerImage,
    uploadServerImage: nonEmpty(env[ControllerEnv.UploadServerImage]) ?? importerImage,
    namespace: nonEmpty(env[ControllerEnv.PodNamespace]) ?? 'default',
    pullPolicy: pullPolicy as ControllerSettings['pullPolicy'],
    verbosity,
    identity: nonEmpty(env[ControllerEnv.PodName]) ?? fallbackIdentity,
    metricsBindAddress: nonEmpty(env[ControllerEnv.MetricsBindAddress]) ?? '0.0.0.0',
    metricsPort,
    ...(gcsEndpoint === undefined ? {} : { gcsEndpoint }),
  });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** CDI's default global filesystem overhead. */
export const DEFAULT_FILESYSTEM_OVERHEAD = '0.06';

/** CDI's default transfer pod resources (`config-controller.go`). */
export const DEFAULT_POD_RESOURCES: Readonly<Required<ResourceRequirements>> = Object.freeze({
  limits: { cpu: '750m', memory: '600M' },
  requests: { cpu: '100m', memory: '60M' },
});

export { isValidPercent } from '../common/config-validate.js';

/** What {@link computeConfigStatus} needs to know about the cluster. */
export interface StorageClassInfo {
  readonly name: string;
  readonly isDefault: boolean;
  /** Annotated `storageclass.kubevirt.io/is-default-virt-class: "true"`. */
  readonly isDefaultVirt?: boolean;
  /** `Immediate` or `WaitForFirstConsumer`. */
  readonly volumeBindingMode: string;
  /** The class's provisioner (smart clones need source and target on the same one). */
  readonly provisioner?: string;
  /** `allowVolumeExpansion` (a smart clone into a larger target expands it afterwards). */
  readonly allowVolumeExpansion?: boolean;
}

/** A StorageProfile's clone settings (`status.cloneStrategy`, `status.snapshotClass`). */
export interface CloneProfile {
  readonly cloneStrategy?: string;
  readonly snapshotClass?: string;
  /** `status.dataImportCronSourceFormat`: `pvc` or `snapshot`. */
  readonly dataImportCronSourceFormat?: string;
}

/** The Ingresses and Routes of CDI's namespace that may expose the upload proxy Service. */
export interface UploadProxyRoutes {
  readonly ingresses: readonly IngressLike[];
  readonly routes: readonly RouteLike[];
  readonly service: string;
}

/**
 * Computes `CDIConfig.status` from its spec, the storage classes and, when given, the Ingresses
 * and Routes that may carry the upload proxy URL (pure).
 */
export function computeConfigStatus(
  spec: CdiConfigSpec | undefined,
  storageClasses: readonly StorageClassInfo[],
  exposure?: UploadProxyRoutes,
): CdiConfigStatus {
  const specGlobal = spec?.filesystemOverhead?.global;
  const global =
    specGlobal !== undefined && isValidPercent(specGlobal)
      ? specGlobal
      : DEFAULT_FILESYSTEM_OVERHEAD;
  const perClass: Record<string, string> = {};
  for (const sc of storageClasses) {
    const override = spec?.filesystemOverhead?.storageClass?.[sc.name];
    perClass[sc.name] = override !== undefined && isValidPercent(override) ? override : global;
  }
  const wantedScratch = spec?.scratchSpaceStorageClass ?? '';
  const scratch = storageClasses.some((sc) => sc.name === wantedScratch) ? wantedScratch : '';
  const proxy = spec?.importProxy;
  const status: CdiConfigStatus = {
    importProxy: {
      HTTPProxy: proxy?.HTTPProxy ?? '',
      HTTPSProxy: proxy?.HTTPSProxy ?? '',
      noProxy: proxy?.noProxy ?? '',
      trustedCAProxy: proxy?.trustedCAProxy ?? '',
    },
    scratchSpaceStorageClass: scratch,
    defaultPodResourceRequirements: {
      limits: { ...DEFAULT_POD_RESOURCES.limits, ...spec?.podResourceRequirements?.limits },
      requests: { ...DEFAULT_POD_RESOURCES.requests, ...spec?.podResourceRequirements?.requests },
    },
    filesystemOverhead: { global, storageClass: perClass },
    preallocation: spec?.preallocation ?? false,
  };
  const url = uploadProxyUrl({
    override: spec?.uploadProxyURLOverride,
    ingresses: exposure?.ingresses ?? [],
    routes: exposure?.routes ?? [],
    service: exposure?.service ?? '',
  });
  if (url !== undefined) status.uploadProxyURL = url;
  return status;
}

/** Feature gates this controller implements (CDI `featuregates.go` names). */
export const FeatureGates = {
  /** Claims of WaitForFirstConsumer classes wait for a consumer pod instead of binding at once. */
  HonorWaitForFirstConsumer: 'HonorWaitForFirstConsumer',
} as const;

/**
 * Gates on when the CDIConfig lists none: CDI's release `CDI` resource enables
 * HonorWaitForFirstConsumer, and this controller has always honoured it.
 */
const DEFAULT_FEATURE_GATES: readonly string[] = [FeatureGates.HonorWaitForFirstConsumer];

/** The effective configuration a reconcile reads (status plus the spec-only lists). */
export interface EffectiveConfig {
  readonly status: CdiConfigStatus;
  /** Placement of transfer pods (the CDI resource's `spec.workload`). */
  readonly workload?: NodePlacement;
  /** `spec.featureGates` as set; undefined when unset (the defaults apply). */
  readonly featureGates?: readonly string[];
  readonly insecureRegistries: readonly string[];
  readonly storageClasses: readonly StorageClassInfo[];
  /** `status.claimPropertySets` of each StorageProfile, by class name (absent: none known). */
  readonly claimPropertySets?: Readonly<Record<string, readonly ClaimPropertySet[]>>;
  /** Each StorageProfile's clone settings, by class name. */
  readonly cloneProfiles?: Readonly<Record<string, CloneProfile>>;
  /** The CDI resource's `spec.cloneStrategyOverride`. */
  readonly cloneStrategyOverride?: string;
}

/** Builds the {@link EffectiveConfig} from a CDIConfig spec, the storage classes and their profiles. */
export function effectiveConfig(
  spec: CdiConfigSpec | undefined,
  storageClasses: readonly StorageClassInfo[],
  claimPropertySets?: Readonly<Record<string, readonly ClaimPropertySet[]>>,
): EffectiveConfig {
  return {
    status: computeConfigStatus(spec, storageClasses),
    ...(spec?.featureGates === undefined ? {} : { featureGates: spec.featureGates }),
    insecureRegistries: spec?.insecureRegistries ?? [],
    storageClasses,
    ...(claimPropertySets === undefined ? {} : { claimPropertySets }),
  };
}

/** True when `gate` is on: listed in `spec.featureGates`, or a default gate when none are set. */
export function featureGateEnabled(config: EffectiveConfig, gate: string): boolean {
  return (config.featureGates ?? DEFAULT_FEATURE_GATES).includes(gate);
}

/** The claim property sets of a class's StorageProfile (the default class when none is named). */
export function claimPropertySetsFor(
  config: EffectiveConfig,
  storageClassName: string | undefined,
): readonly ClaimPropertySet[] {
  const sc = resolveStorageClass(config, storageClassName);
  return (sc === undefined ? undefined : config.claimPropertySets?.[sc]) ?? [];
}

/**
 * The default virtualization class (`storageclass.kubevirt.io/is-default-virt-class`), which CDI
 * prefers over the cluster default for DataVolumes of the `storage` API naming no class; the
 * first by name when several are marked (an alert reports that).
 */
export function defaultVirtStorageClass(config: EffectiveConfig): string | undefined {
  return config.storageClasses
    .filter((sc) => sc.isDefaultVirt === true)
    .map((sc) => sc.name)
    .sort()[0];
}

/** Name of the storage class a claim gets: its own, else the cluster default, else undefined. */
export function resolveStorageClass(
  config: EffectiveConfig,
  storageClassName: string | undefined,
): string | undefined {
  if (storageClassName !== undefined && storageClassName !== '') return storageClassName;
  return config.storageClasses.find((sc) => sc.isDefault)?.name;
}

/** Filesystem overhead (a fraction) for a storage class; the global value when unknown. */
export function filesystemOverheadFor(
  config: EffectiveConfig,
  storageClassName: string | undefined,
): number {
  const fo = config.status.filesystemOverhead;
  const sc = resolveStorageClass(config, storageClassName);
  const text =
    (sc === undefined ? undefined : fo?.storageClass?.[sc]) ??
    fo?.global ??
    DEFAULT_FILESYSTEM_OVERHEAD;
  return Number(text);
}

/** True when claims of this storage class bind only once a consumer pod is scheduled. */
export function isWaitForFirstConsumer(
  config: EffectiveConfig,
  storageClassName: string | undefined,
): boolean {
  const sc = resolveStorageClass(config, storageClassName);
  return config.storageClasses.some(
    (c) => c.name === sc && c.volumeBindingMode === 'WaitForFirstConsumer',
  );
}
