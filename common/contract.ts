// SPDX-License-Identifier: Apache-2.0
/**
 * The contract between the controller and the importer/upload pods, with the Go CDI's names
 * (`pkg/common/common.go`, `pkg/controller/common/util.go`). No string literal for these names
 * appears anywhere else in the project.
 */

/** Importer pod environment variables (CDI `makeImportEnv`). */
export const ImporterEnv = {
  Source: 'IMPORTER_SOURCE',
  Endpoint: 'IMPORTER_ENDPOINT',
  ContentType: 'IMPORTER_CONTENTTYPE',
  ImageSize: 'IMPORTER_IMAGE_SIZE',
  AccessKeyId: 'IMPORTER_ACCESS_KEY_ID',
  SecretKey: 'IMPORTER_SECRET_KEY',
  CertDir: 'IMPORTER_CERT_DIR',
  ProxyCertDir: 'IMPORTER_PROXY_CERT_DIR',
  InsecureTls: 'INSECURE_TLS',
  Checksum: 'IMPORTER_CHECKSUM',
  ExtraHeaderPrefix: 'IMPORTER_EXTRA_HEADER_',
  PullMethod: 'IMPORTER_PULL_METHOD',
  /** pullMethod node: the file the server container creates once it serves the disk. */
  ReadyFile: 'IMPORTER_READY_FILE',
  /** pullMethod node: the file the importer creates when done, so that the server exits. */
  DoneFile: 'IMPORTER_DONE_FILE',
  RegistryImageArchitecture: 'IMPORTER_REGISTRY_IMAGE_ARCHITECTURE',
  FilesystemOverhead: 'FILESYSTEM_OVERHEAD',
  Preallocation: 'PREALLOCATION',
  OwnerUid: 'OWNER_UID',
  CacheMode: 'CACHE_MODE',
  /** The GCS service-account key file (CDI mounts the `secretRef` Secret at `/google`). */
  GoogleCredentialsFile: 'GOOGLE_APPLICATION_CREDENTIALS',
  /** Google's emulator variable: a GCS endpoint (`host:port` or URL) replacing Google's own. */
  StorageEmulatorHost: 'STORAGE_EMULATOR_HOST',
  HttpProxy: 'http_proxy',
  HttpsProxy: 'https_proxy',
  NoProxy: 'no_proxy',
  /** Ours: where the filesystem target lives (default `/data`); the sandbox overrides it. */
  DataDir: 'CDI_DATA_DIR',
  /** Ours: the block device path (default `/dev/cdi-block-volume`); the sandbox overrides it. */
  BlockDevice: 'CDI_BLOCK_DEVICE',
  /** Ours: the scratch directory (default `/scratch`). */
  ScratchDir: 'CDI_SCRATCH_DIR',
  /** Ours: where the termination message goes (default `/dev/termination-log`). */
  TerminationLog: 'CDI_TERMINATION_LOG',
  /** Ours: metrics listen address, `host:port` (default `0.0.0.0:8443`); `off` disables. */
  MetricsAddress: 'CDI_METRICS_ADDRESS',
  /** Ours: where secret extra headers are mounted (default `/extraheaders`, one dir per Secret). */
  ExtraHeadersDir: 'CDI_EXTRA_HEADERS_DIR',
  /** Ours: an HTTP attempt without a byte for this long is retried (default `60s`). */
  IdleTimeout: 'CDI_IDLE_TIMEOUT',
  /** Ours: time without progress an HTTP transfer may spend over all retries (default `4m`). */
  StallBudget: 'CDI_STALL_BUDGET',
} as const;

/** Values of `IMPORTER_SOURCE` / the `storage.import.source` annotation. */
export const SourceKinds = {
  Http: 'http',
  S3: 's3',
  Gcs: 'gcs',
  Registry: 'registry',
  ImageIo: 'imageio',
  Vddk: 'vddk',
  None: 'none',
  /** Ours: a local path (CLI only). */
  File: 'file',
  /**
   * Ours: a host-assisted clone: `IMPORTER_ENDPOINT` is the source claim's image inside the pod
   * ({@link PodPaths.CloneSourceImage} or {@link PodPaths.CloneSourceDevice}), copied byte for byte.
   */
  Pvc: 'pvc',
} as const;
export type SourceKind = (typeof SourceKinds)[keyof typeof SourceKinds];

/** Values of `IMPORTER_CONTENTTYPE` / DataVolume `spec.contentType`. */
export const ContentTypes = { Kubevirt: 'kubevirt', Archive: 'archive' } as const;
export type ContentType = (typeof ContentTypes)[keyof typeof ContentTypes];

/** Values of `IMPORTER_PULL_METHOD`. */
export const PullMethods = { Pod: 'pod', Node: 'node' } as const;
export type PullMethod = (typeof PullMethods)[keyof typeof PullMethods];

/** Default in-pod paths (CDI `common.go`). */
export const PodPaths = {
  DataDir: '/data',
  DiskImageName: 'disk.img',
  BlockDevice: '/dev/cdi-block-volume',
  ScratchDir: '/scratch',
  CertDir: '/certs',
  TerminationLog: '/dev/termination-log',
  ExtraHeadersDir: '/extraheaders',
  /** Where a gcs source's `secretRef` Secret is mounted (CDI `ImporterGoogleCredentialDir`). */
  GoogleCredentialDir: '/google',
  /** The key file in it: the Secret's `credentials.json` (CDI `ImporterGoogleCredentialFile`). */
  GoogleCredentialFile: '/google/credentials.json',
  /** Where a clone's filesystem source claim is mounted read-only. */
  CloneSourceDir: '/source',
  /** The image of a filesystem clone source (`/source/disk.img`). */
  CloneSourceImage: '/source/disk.img',
  /** The device of a block clone source (CDI's cloner uses the same path). */
  CloneSourceDevice: '/dev/cdi-clone-source',
} as const;

/** The termination message CDI's controller reads (max 4096 bytes, one line). */
export const TERMINATION_MESSAGE_MAX_BYTES = 4096;

/** Successful termination message (CDI `TerminationMessage`). */
export interface TerminationMessage {
  readonly scratchSpaceRequired?: boolean;
  readonly preallocationApplied?: boolean;
  readonly deadlinePassed?: boolean;
  readonly labels?: Readonly<Record<string, string>>;
  readonly message?: string;
  /** Ours: the CdiError code of a failure, so the controller branches on a code. */
  readonly code?: string;
}

/** Messages CDI writes on success. */
export const TerminationMessages = {
  ImportComplete: 'Import Complete',
  UploadComplete: 'Upload Complete',
  /** CDI's upload server says this after a host-assisted clone; our importer does too. */
  CloneComplete: 'Clone Complete',
} as const;

/** Prometheus metric the controller scrapes for progress. */
export const IMPORT_PROGRESS_METRIC = 'kubevirt_cdi_import_progress_total';
/** CDI's clone progress metric: what the importer pod serves for a clone (ADR 0013). */
export const CLONE_PROGRESS_METRIC = 'kubevirt_cdi_clone_progress_total';
/**
 * Ours: an upload server's last refused upload (`message` label), until the next upload starts;
 * the controller scrapes it with the progress and shows it on the DataVolume.
 */
export const UPLOAD_REFUSED_METRIC = 'kubevirt_cdi_upload_refused_info';
/** Port of the importer's HTTPS metrics endpoint. */
export const METRICS_PORT = 8443;

/** Annotation keys (prefix `cdi.kubevirt.io/`). */
export const Annotations = {
  Endpoint: 'cdi.kubevirt.io/storage.import.endpoint',
  Source: 'cdi.kubevirt.io/storage.import.source',
  SecretName: 'cdi.kubevirt.io/storage.import.secretName',
  CertConfigMap: 'cdi.kubevirt.io/storage.import.certConfigMap',
  ContentType: 'cdi.kubevirt.io/storage.contentType',
  ExtraHeadersPrefix: 'cdi.kubevirt.io/storage.import.extraHeaders',
  SecretExtraHeadersPrefix: 'cdi.kubevirt.io/storage.import.secretExtraHeaders',
  Checksum: 'cdi.kubevirt.io/storage.import.checksum',
  InsecureSkipVerify: 'cdi.kubevirt.io/storage.import.insecureSkipVerify',
  RegistryImportMethod: 'cdi.kubevirt.io/storage.import.registryImportMethod',
  RegistryImageStream: 'cdi.kubevirt.io/storage.import.registryImageStream',
  RegistryImageArchitecture: 'cdi.kubevirt.io/storage.import.registryImageArchitecture',
  PreallocationRequested: 'cdi.kubevirt.io/storage.preallocation.requested',
  Preallocation: 'cdi.kubevirt.io/storage.preallocation',
  PriorityClassName: 'cdi.kubevirt.io/storage.pod.priorityclassname',
  ServiceAccountName: 'cdi.kubevirt.io/storage.pod.serviceAccountName',
  RetainAfterCompletion: 'cdi.kubevirt.io/storage.pod.retainAfterCompletion',
  UploadTarget: 'cdi.kubevirt.io/storage.upload.target',
  RequiresScratch: 'cdi.kubevirt.io/storage.import.requiresScratch',
  RequiresDirectIo: 'cdi.kubevirt.io/storage.import.requiresDirectIo',
  BindImmediate: 'cdi.kubevirt.io/storage.bind.immediate.requested',
  ImportPodName: 'cdi.kubevirt.io/storage.import.importPodName',
  UploadPodName: 'cdi.kubevirt.io/storage.uploadPodName',
  PodPhase: 'cdi.kubevirt.io/storage.pod.phase',
  PodReady: 'cdi.kubevirt.io/storage.pod.ready',
  PodRestarts: 'cdi.kubevirt.io/storage.pod.restarts',
  PodSchedulable: 'cdi.kubevirt.io/storage.pod.schedulable',
  RunningCondition: 'cdi.kubevirt.io/storage.condition.running',
  RunningConditionReason: 'cdi.kubevirt.io/storage.condition.running.reason',
  RunningConditionMessage: 'cdi.kubevirt.io/storage.condition.running.message',
  BoundCondition: 'cdi.kubevirt.io/storage.condition.bound',
  BoundConditionReason: 'cdi.kubevirt.io/storage.condition.bound.reason',
  BoundConditionMessage: 'cdi.kubevirt.io/storage.condition.bound.message',
  FatalError: 'cdi.kubevirt.io/storage.import.fatalError',
  CreatedForDataVolume: 'cdi.kubevirt.io/createdForDataVolume',
  CreatedByController: 'cdi.kubevirt.io/storage.createdByController',
  SelectedNode: 'volume.kubernetes.io/selected-node',
  /** CDI's clone request on a target claim: `<namespace>/<name>` of the source claim. */
  CloneRequest: 'k8s.io/CloneRequest',
  /** CDI's clone token on a DataVolume (and copied to its claim), from the admission webhook. */
  CloneToken: 'cdi.kubevirt.io/storage.clone.token',
  /** The client certificate name a clone target's upload server requires (the source pod's). */
  UploadClientName: 'cdi.kubevirt.io/uploadClientName',
  /** DataImportCron: the digest the last poll found (what the newest import must hold). */
  SourceDesiredDigest: 'cdi.kubevirt.io/storage.import.sourceDesiredDigest',
  /** DataImportCron: when the next poll is due (RFC 3339). */
  NextCronTime: 'cdi.kubevirt.io/storage.import.nextCronTime',
  /** DataImportCron: when the last poll ran (RFC 3339). */
  LastCronTime: 'cdi.kubevirt.io/storage.import.lastCronTime',
  /** An import of a DataImportCron: when it was last the cron's newest (garbage collection order). */
  LastUseTime: 'cdi.kubevirt.io/storage.import.lastUseTime',
} as const;

/** Annotations of other projects that CDI sets or reads on the objects it creates. */
export const ForeignAnnotations = {
  IstioInject: 'sidecar.istio.io/inject',
  LinkerdInject: 'linkerd.io/inject',
  DefaultStorageClass: 'storageclass.kubernetes.io/is-default-class',
  /** Multus: extra networks of a pod (passed from the claim to its transfer pods). */
  MultusNetworks: 'k8s.v1.cni.cncf.io/networks',
  /** Multus: the pod's default network. */
  MultusDefaultNetwork: 'v1.multus-cni.io/default-network',
  /** KubeVirt's default class for virtual machine disks; preferred over the cluster default. */
  DefaultVirtStorageClass: 'storageclass.kubevirt.io/is-default-virt-class',
} as const;

/** Labels CDI puts on the objects it creates. */
export const Labels = {
  /** `app: containerized-data-importer` on every object. */
  App: 'app',
  AppValue: 'containerized-data-importer',
  /** Names the CDI component of a pod (`importer`). */
  Component: 'cdi.kubevirt.io',
  /** Lets Prometheus find the importer's metrics endpoint. */
  Prometheus: 'prometheus.cdi.kubevirt.io',
  /** Silences the "volume filling up" alert on filesystem claims CDI fills completely. */
  FillingUpAlert: 'alerts.k8s.io/KubePersistentVolumeFillingUp',
  /** Keeps scratch claims out of Velero backups. */
  VeleroExclude: 'velero.io/exclude-from-backup',
  /** Names the DataImportCron that made (or manages) the labelled DataVolume, claim or DataSource. */
  DataImportCron: 'cdi.kubevirt.io/dataImportCron',
  /** `"true"`: delete the labelled object with its DataImportCron (`retentionPolicy: None`). */
  DataImportCronCleanup: 'cdi.kubevirt.io/dataImportCron.cleanup',
} as const;

/** Environment of the controller process (`cdi controller`). */
export const ControllerEnv = {
  /** Image of importer pods. */
  ImporterImage: 'IMPORTER_IMAGE',
  /** Image of upload server pods (the importer's image when unset: one image holds `cdi`). */
  UploadServerImage: 'UPLOADSERVER_IMAGE',
  /** `imagePullPolicy` of importer pods. */
  PullPolicy: 'PULL_POLICY',
  /** Importer verbosity. */
  Verbosity: 'VERBOSITY',
  /** The controller's namespace (downward API): where its leader Lease lives. */
  PodNamespace: 'POD_NAMESPACE',
  /** The controller pod's name (downward API): its identity in the Lease. */
  PodName: 'POD_NAME',
  /** Address the metrics and probe endpoints bind to (default all interfaces). */
  MetricsBindAddress: 'METRICS_BIND_ADDRESS',
  /** Port of `/metrics`, `/healthz` and `/readyz` (default 8080; 0 picks a free port). */
  MetricsPort: 'METRICS_PORT',
  /**
   * Ours: a GCS endpoint (Google's `STORAGE_EMULATOR_HOST` form) the importer pods of `gcs`
   * sources get, so `gs://` URLs reach a GCS-compatible server instead of Google.
   */
  GcsEndpoint: 'STORAGE_EMULATOR_HOST',
} as const;

/** Environment of the upload server pod (CDI `upload-controller.go` `makeUploadPodSpec`). */
export const UploadServerEnv = {
  TlsKeyFile: 'TLS_KEY_FILE',
  TlsCertFile: 'TLS_CERT_FILE',
  /** CA bundle that signs the proxy's client certificate. */
  ClientCertFile: 'CLIENT_CERT_FILE',
  /** Required common name of that client certificate. */
  ClientName: 'CLIENT_NAME',
  ImageSize: 'UPLOAD_IMAGE_SIZE',
  FilesystemOverhead: 'FILESYSTEM_OVERHEAD',
  Preallocation: 'PREALLOCATION',
  /** The target path (`/data/disk.img` or the block device). */
  Destination: 'DESTINATION',
  /** Ours: listen address `host:port` (default `0.0.0.0:8443`). */
  ListenAddress: 'CDI_UPLOAD_LISTEN',
  /** Ours: `memory` (default) or `disk`: where received bytes wait for the pipeline (ADR 0009). */
  Journal: 'CDI_UPLOAD_JOURNAL',
} as const;

/** CDI's client name of the upload proxy's certificate. */
export const UPLOAD_CLIENT_NAME = 'client.upload-server.cdi.kubevirt.io';
/** The upload server path a network clone's source pod posts its extent stream to. */
export const CLONE_UPLOAD_PATH = '/v1beta1/upload-clone';

/** Port of upload servers (pod and Service). */
export const UPLOAD_SERVER_PORT = 8443;

/**
 * CDI's name of a claim's upload Service (and of its TLS Secret): `cdi-upload-<pvc>`, dots to
 * dashes, at most 63 characters (a DNS label), no trailing dash.
 */
export function uploadServiceName(pvc: string): string {
  return `cdi-upload-${pvc}`.replace(/\./g, '-').slice(0, 63).replace(/-+$/, '');
}

/** Where the upload server pod finds its TLS material (CDI `upload-controller.go`). */
export const UploadServerPaths = {
  Dir: '/etc/tls',
  Key: '/etc/tls/tls.key',
  Cert: '/etc/tls/tls.crt',
  ClientCa: '/etc/tls/ca.crt',
} as const;

/** Environment of the upload proxy (CDI `cmd/cdi-uploadproxy`). */
export const UploadProxyEnv = {
  /** PEM public key of the token API server. */
  ApiServerPublicKey: 'APISERVER_PUBLIC_KEY',
} as const;
