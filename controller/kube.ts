// SPDX-License-Identifier: Apache-2.0
/**
 * The controller's only door to the Kubernetes API: typed calls of @kubernetes/client-node with
 * CDI's conventions (merge patches, status subresource, AlreadyExists/NotFound tolerated where a
 * reconcile must be idempotent). Errors come out as `CDI_KUBE_API` CdiErrors carrying the HTTP
 * status, so callers branch on `httpStatus`, not on client classes.
 */
import {
  AdmissionregistrationV1Api,
  ApiregistrationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  StorageV1Api,
  setHeaderOptions,
  type CoreV1Event,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Lease,
  type V1ObjectMeta,
  type V1PersistentVolumeClaim,
  type V1Pod,
  type V1Secret,
  type V1Service,
} from '@kubernetes/client-node';
import {
  CDI_CONFIG_NAME,
  CDI_GROUP,
  CDI_VERSION,
  CdiResources,
  type CdiConfig,
  type CdiConfigStatus,
  type DataSource,
  type DataVolume,
  type DataVolumeStatus,
  type StorageProfile,
} from '../common/api/datavolume.js';
import { DATA_IMPORT_CRONS, type DataImportCronStatus } from '../common/api/dataimportcron.js';
import { CdiError, ErrorCodes, errorMessage } from '../common/errors.js';
import { shareConnections } from './shared-connections.js';

/** HTTP status of a failed API call, if it is one. */
export function apiStatus(err: unknown): number | undefined {
  if (err instanceof CdiError) return err.httpStatus;
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = err.code;
    return typeof code === 'number' ? code : undefined;
  }
  return undefined;
}

function apiBodyMessage(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'body' in err) {
    const body = err.body;
    if (typeof body === 'object' && body !== null && 'message' in body) return String(body.message);
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: unknown };
        if (typeof parsed.message === 'string') return parsed.message;
      } catch {
        return body.slice(0, 200);
      }
    }
  }
  return errorMessage(err);
}

/** Wraps an API failure as a `CDI_KUBE_API` error (5xx, 409 and 429 retryable). */
export function kubeError(err: unknown, what: string): CdiError {
  const status = apiStatus(err);
  return new CdiError(ErrorCodes.KubeApi, `${what}: ${apiBodyMessage(err)}`, {
    cause: err,
    retryable: status === undefined || status >= 500 || status === 409 || status === 429,
    ...(status === undefined ? {} : { httpStatus: status }),
  });
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw kubeError(err, what);
  }
}

/** The snapshot API's group and version. */
const SNAPSHOT_API = { group: 'snapshot.storage.k8s.io', version: 'v1' } as const;

/** The fields of a VolumeSnapshot the controller reads and writes. */
export interface VolumeSnapshot {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: { source?: { persistentVolumeClaimName?: string }; volumeSnapshotClassName?: string };
  status?: {
    readyToUse?: boolean;
    restoreSize?: string | number;
    boundVolumeSnapshotContentName?: string;
  };
}

/** The fields of a VolumeSnapshotContent the controller reads. */
export interface VolumeSnapshotContent {
  metadata?: V1ObjectMeta;
  spec?: { driver?: string; sourceVolumeMode?: string };
  status?: { restoreSize?: number };
}

/** The fields of a VolumeSnapshotClass the controller reads. */
export interface VolumeSnapshotClass {
  metadata?: V1ObjectMeta;
  driver?: string;
}

/** Runs a call and returns undefined on 404. */
async function orNotFound<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (apiStatus(err) === 404) return undefined;
    throw kubeError(err, what);
  }
}

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const JSON_PATCH = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

/** The API calls the controller makes. */
export class KubeClient {
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly storage: StorageV1Api;
  readonly coordination: CoordinationV1Api;
  readonly apiRegistration: ApiregistrationV1Api;
  readonly admission: AdmissionregistrationV1Api;

  /** Every call made through `kubeConfig` (here and by the informers) shares its connections. */
  constructor(readonly kubeConfig: KubeConfig) {
    shareConnections(kubeConfig);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.storage = kubeConfig.makeApiClient(StorageV1Api);
    this.coordination = kubeConfig.makeApiClient(CoordinationV1Api);
    this.apiRegistration = kubeConfig.makeApiClient(ApiregistrationV1Api);
    this.admission = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  }

  /** Reads a claim; undefined when absent. */
  getPvc(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined> {
    return orNotFound(`get PVC ${namespace}/${name}`, () =>
      this.core.readNamespacedPersistentVolumeClaim({ namespace, name }),
    );
  }

  /** Creates a claim; returns false when it already exists. */
  async createPvc(pvc: V1PersistentVolumeClaim): Promise<boolean> {
    const namespace = pvc.metadata?.namespace ?? '';
    try {
      await this.core.createNamespacedPersistentVolumeClaim({ namespace, body: pvc });
      return true;
    } catch (err) {
      if (apiStatus(err) === 409) return false;
      throw kubeError(err, `create PVC ${namespace}/${pvc.metadata?.name ?? ''}`);
    }
  }

  /** Merge-patches a claim's annotations (null removes one) and labels. */
  async patchPvcMetadata(
    namespace: string,
    name: string,
    meta: {
      annotations?: Readonly<Record<string, string | null>>;
      labels?: Readonly<Record<string, string>>;
    },
  ): Promise<void> {
    await call(`patch PVC ${namespace}/${name}`, () =>
      this.core.patchNamespacedPersistentVolumeClaim(
        { namespace, name, body: { metadata: meta } },
        MERGE_PATCH,
      ),
    );
  }

  /** Creates a pod; returns the created pod, or undefined when it already exists. */
  async createPod(pod: V1Pod): Promise<V1Pod | undefined> {
    const namespace = pod.metadata?.namespace ?? '';
    try {
      return await this.core.createNamespacedPod({ namespace, body: pod });
    } catch (err) {
      if (apiStatus(err) === 409) return undefined;
      throw kubeError(err, `create pod ${namespace}/${pod.metadata?.name ?? ''}`);
    }
  }

  /** Deletes a pod (background propagation); absent is fine. */
  async deletePod(namespace: string, name: string): Promise<void> {
    await orNotFound(`delete pod ${namespace}/${name}`, () =>
      this.core.deleteNamespacedPod({ namespace, name, propagationPolicy: 'Background' }),
    );
  }

  /** Deletes a claim (background propagation); absent is fine. */
  async deletePvc(namespace: string, name: string): Promise<void> {
    await orNotFound(`delete PVC ${namespace}/${name}`, () =>
      this.core.deleteNamespacedPersistentVolumeClaim({
        namespace,
        name,
        propagationPolicy: 'Background',
      }),
    );
  }

  /** Writes a DataVolume's status through the status subresource (merge patch). */
  async patchDataVolumeStatus(
    namespace: string,
    name: string,
    status: DataVolumeStatus,
  ): Promise<void> {
    await orNotFound(`update DataVolume ${namespace}/${name} status`, () =>
      this.custom.patchNamespacedCustomObjectStatus(
        {
          group: CDI_GROUP,
          version: CDI_VERSION,
          namespace,
          plural: CdiResources.DataVolumes,
          name,
          body: { status },
        },
        MERGE_PATCH,
      ),
    );
  }

  /** Merge-patches annotations onto a DataVolume (null removes); a missing one is ignored. */
  async patchDataVolumeAnnotations(
    namespace: string,
    name: string,
    annotations: Readonly<Record<string, string | null>>,
  ): Promise<void> {
    await orNotFound(`patch DataVolume ${namespace}/${name}`, () =>
      this.custom.patchNamespacedCustomObject(
        {
          group: CDI_GROUP,
          version: CDI_VERSION,
          namespace,
          plural: CdiResources.DataVolumes,
          name,
          body: { metadata: { annotations } },
        },
        MERGE_PATCH,
      ),
    );
  }

  /** Merge-patches a DataSource's status (its Ready condition); a missing one is ignored. */
  async patchDataSourceStatus(
    namespace: string,
    name: string,
    status: NonNullable<DataSource['status']>,
  ): Promise<void> {
    await orNotFound(`update DataSource ${namespace}/${name} status`, () =>
      this.custom.patchNamespacedCustomObjectStatus(
        {
          group: CDI_GROUP,
          version: CDI_VERSION,
          namespace,
          plural: CdiResources.DataSources,
          name,
          body: { status },
        },
        MERGE_PATCH,
      ),
    );
  }

  /** Creates a DataVolume; returns false when it already exists. */
  async createDataVolume(dv: DataVolume): Promise<boolean> {
    const namespace = dv.metadata.namespace ?? '';
    try {
      await this.custom.createNamespacedCustomObject({
        group: CDI_GROUP,
        version: CDI_VERSION,
        namespace,
        plural: CdiResources.DataVolumes,
        body: dv,
      });
      return true;
    } catch (err) {
      if (apiStatus(err) === 409) return false;
      throw kubeError(err, `create DataVolume ${namespace}/${dv.metadata.name ?? ''}`);
    }
  }

  /** Deletes a DataVolume (background propagation); returns false when it was absent. */
  async deleteDataVolume(namespace: string, name: string): Promise<boolean> {
    const done: unknown = await orNotFound(`delete DataVolume ${namespace}/${name}`, () =>
      this.custom.deleteNamespacedCustomObject({
        group: CDI_GROUP,
        version: CDI_VERSION,
        namespace,
        plural: CdiResources.DataVolumes,
        name,
        propagationPolicy: 'Background',
      }),
    );
    return done !== undefined;
  }

  /** Creates a DataSource; returns false when it already exists. */
  async createDataSource(ds: DataSource): Promise<boolean> {
    const namespace = ds.metadata.namespace ?? '';
    try {
      await this.custom.createNamespacedCustomObject({
        group: CDI_GROUP,
        version: CDI_VERSION,
        namespace,
        plural: CdiResources.DataSources,
        body: ds,
      });
      return true;
    } catch (err) {
      if (apiStatus(err) === 409) return false;
      throw kubeError(err, `create DataSource ${namespace}/${ds.metadata.name ?? ''}`);
    }
  }

  /** Merge-patches a DataSource (labels, spec); a missing one is ignored. */
  async patchDataSource(
    namespace: string,
    name: string,
    body: Readonly<Record<string, unknown>>,
  ): Promise<void> {
    await orNotFound(`patch DataSource ${namespace}/${name}`, () =>
      this.custom.patchNamespacedCustomObject(
        {
          group: CDI_GROUP,
          version: CDI_VERSION,
          namespace,
          plural: CdiResources.DataSources,
          name,
          body,
        },
        MERGE_PATCH,
      ),
    );
  }

  /** Deletes a DataSource; absent is fine. */
  async deleteDataSource(namespace: string, name: string): Promise<void> {
    await orNotFound(`delete DataSource ${namespace}/${name}`, () =>
      this.custom.deleteNamespacedCustomObject({
        group: CDI_GROUP,
        version: CDI_VERSION,
        namespace,
        plural: CdiResources.DataSources,
        name,
      }),
    );
  }

  /**
   * Merge-patches a DataImportCron's annotations and status together (the kind has no status
   * subresource); `resourceVersion` makes a write based on a stale read fail with a retryable 409.
   */
  async patchDataImportCron(
    namespace: string,
    name: string,
    patch: {
      resourceVersion: string;
      annotations: Readonly<Record<string, string | null>>;
      status: DataImportCronStatus;
      clear: readonly string[];
    },
  ): Promise<void> {
    const metadata: Record<string, unknown> = { resourceVersion: patch.resourceVersion };
    if (Object.keys(patch.annotations).length > 0) metadata['annotations'] = patch.annotations;
    await orNotFound(`update DataImportCron ${namespace}/${name}`, () =>
      this.custom.patchNamespacedCustomObject(
        {
          group: CDI_GROUP,
          version: CDI_VERSION,
          namespace,
          plural: DATA_IMPORT_CRONS,
          name,
          body: {
            metadata,
            status: { ...patch.status, ...Object.fromEntries(patch.clear.map((k) => [k, null])) },
          },
        },
        MERGE_PATCH,
      ),
    );
  }

  /**
   * Reads a VolumeSnapshot (`snapshot.storage.k8s.io/v1`); undefined when absent, also when the
   * cluster does not serve the snapshot API at all (both are 404).
   */
  async getVolumeSnapshot(namespace: string, name: string): Promise<VolumeSnapshot | undefined> {
    const got: unknown = await orNotFound(`get VolumeSnapshot ${namespace}/${name}`, () =>
      this.custom.getNamespacedCustomObject({
        ...SNAPSHOT_API,
        namespace,
        plural: 'volumesnapshots',
        name,
      }),
    );
    return got as VolumeSnapshot | undefined;
  }

  /** Reads a VolumeSnapshotContent; undefined when absent. */
  async getVolumeSnapshotContent(name: string): Promise<VolumeSnapshotContent | undefined> {
    const got: unknown = await orNotFound(`get VolumeSnapshotContent ${name}`, () =>
      this.custom.getClusterCustomObject({
        ...SNAPSHOT_API,
        plural: 'volumesnapshotcontents',
        name,
      }),
    );
    return got as VolumeSnapshotContent | undefined;
  }

  /** Lists the VolumeSnapshotClasses; none when the cluster does not serve the snapshot API. */
  async listVolumeSnapshotClasses(): Promise<VolumeSnapshotClass[]> {
    const got: unknown = await orNotFound('list VolumeSnapshotClasses', () =>
      this.custom.listClusterCustomObject({ ...SNAPSHOT_API, plural: 'volumesnapshotclasses' }),
    );
    return (got as { items?: VolumeSnapshotClass[] } | undefined)?.items ?? [];
  }

  /** Creates a VolumeSnapshot; false when one of that name exists already. */
  async createVolumeSnapshot(snapshot: VolumeSnapshot): Promise<boolean> {
    const namespace = snapshot.metadata?.namespace ?? '';
    try {
      await this.custom.createNamespacedCustomObject({
        ...SNAPSHOT_API,
        namespace,
        plural: 'volumesnapshots',
        body: snapshot,
      });
      return true;
    } catch (err) {
      if (apiStatus(err) === 409) return false;
      throw kubeError(err, `create VolumeSnapshot ${namespace}/${snapshot.metadata?.name ?? ''}`);
    }
  }

  /** Deletes a VolumeSnapshot; nothing when it is gone. */
  async deleteVolumeSnapshot(namespace: string, name: string): Promise<void> {
    await orNotFound(`delete VolumeSnapshot ${namespace}/${name}`, () =>
      this.custom.deleteNamespacedCustomObject({
        ...SNAPSHOT_API,
        namespace,
        plural: 'volumesnapshots',
        name,
      }),
    );
  }

  /** Sets a claim's storage request (expansion). */
  async resizePvc(namespace: string, name: string, storage: string): Promise<void> {
    await call(`resize PVC ${namespace}/${name}`, () =>
      this.core.patchNamespacedPersistentVolumeClaim(
        { namespace, name, body: { spec: { resources: { requests: { storage } } } } },
        MERGE_PATCH,
      ),
    );
  }

  /** Creates a StorageProfile; returns false when it already exists. */
  async createStorageProfile(profile: StorageProfile): Promise<boolean> {
    try {
      await this.custom.createClusterCustomObject({
        group: CDI_GROUP,
        version: CDI_VERSION,
        plural: CdiResources.StorageProfiles,
        body: profile,
      });
      return true;
    } catch (err) {
      if (apiStatus(err) === 409) return false;
      throw kubeError(err, `create StorageProfile ${profile.metadata.name ?? ''}`);
    }
  }

  /** Merge-patches a StorageProfile's status (null removes a field); a missing one is ignored. */
  async patchStorageProfileStatus(
    name: string,
    status: Readonly<Record<string, unknown>>,
  ): Promise<void> {
    await orNotFound(`update StorageProfile ${name} status`, () =>
      this.custom.patchClusterCustomObjectStatus(
        {
          group: CDI_GROUP,
          version: CDI_VERSION,
          plural: CdiResources.StorageProfiles,
          name,
          body: { status },
        },
        MERGE_PATCH,
      ),
    );
  }

  /** Deletes a StorageProfile; absent is fine. */
  async deleteStorageProfile(name: string): Promise<void> {
    await orNotFound(`delete StorageProfile ${name}`, () =>
      this.custom.deleteClusterCustomObject({
        group: CDI_GROUP,
        version: CDI_VERSION,
        plural: CdiResources.StorageProfiles,
        name,
      }),
    );
  }

  /** Reads the CDIConfig singleton; undefined when absent. */
  async getCdiConfig(): Promise<CdiConfig | undefined> {
    const got: unknown = await orNotFound('get CDIConfig', () =>
      this.custom.getClusterCustomObject({
        group: CDI_GROUP,
        version: CDI_VERSION,
        plural: CdiResources.CdiConfigs,
        name: CDI_CONFIG_NAME,
      }),
    );
    return got as CdiConfig | undefined;
  }

  /** OpenShift Routes of a namespace; none where the Route API is not served. */
  async listRoutes(namespace: string): Promise<KubernetesObject[]> {
    const list: unknown = await orNotFound('list Routes', () =>
      this.custom.listNamespacedCustomObject({
        group: 'route.openshift.io',
        version: 'v1',
        namespace,
        plural: 'routes',
      }),
    );
    return (list as KubernetesListObject<KubernetesObject> | undefined)?.items ?? [];
  }

  /** Creates an empty CDIConfig singleton (as CDI's operator would); existing is fine. */
  async ensureCdiConfig(): Promise<void> {
    try {
      await this.custom.createClusterCustomObject({
        group: CDI_GROUP,
        version: CDI_VERSION,
        plural: CdiResources.CdiConfigs,
        body: {
          apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
          kind: 'CDIConfig',
          metadata: { name: CDI_CONFIG_NAME },
          spec: {},
        },
      });
    } catch (err) {
      if (apiStatus(err) !== 409) throw kubeError(err, 'create CDIConfig');
    }
  }

  /** Writes the CDIConfig status (merge patch of the status subresource). */
  async patchCdiConfigStatus(status: CdiConfigStatus): Promise<void> {
    // null removes a URL no longer found (a merge patch leaves absent keys alone).
    const body = { status: { ...status, uploadProxyURL: status.uploadProxyURL ?? null } };
    await call('update CDIConfig status', () =>
      this.custom.patchClusterCustomObjectStatus(
        {
          group: CDI_GROUP,
          version: CDI_VERSION,
          plural: CdiResources.CdiConfigs,
          name: CDI_CONFIG_NAME,
          body,
        },
        MERGE_PATCH,
      ),
    );
  }

  /** Records an Event. */
  async createEvent(event: CoreV1Event): Promise<void> {
    const namespace = event.metadata.namespace ?? 'default';
    await call('create event', () => this.core.createNamespacedEvent({ namespace, body: event }));
  }

  /** Reads a Lease; undefined when absent. */
  getLease(namespace: string, name: string): Promise<V1Lease | undefined> {
    return orNotFound(`get Lease ${namespace}/${name}`, () =>
      this.coordination.readNamespacedLease({ namespace, name }),
    );
  }

  /** Creates a Lease; returns false on a race (already exists). */
  async createLease(lease: V1Lease): Promise<boolean> {
    const namespace = lease.metadata?.namespace ?? '';
    try {
      await this.coordination.createNamespacedLease({ namespace, body: lease });
      return true;
    } catch (err) {
      if (apiStatus(err) === 409) return false;
      throw kubeError(err, 'create Lease');
    }
  }

  /** Replaces a Lease (resourceVersion checked by the server); returns false on a conflict. */
  async replaceLease(lease: V1Lease): Promise<boolean> {
    const namespace = lease.metadata?.namespace ?? '';
    const name = lease.metadata?.name ?? '';
    try {
      await this.coordination.replaceNamespacedLease({ namespace, name, body: lease });
      return true;
    } catch (err) {
      if (apiStatus(err) === 409) return false;
      throw kubeError(err, 'replace Lease');
    }
  }

  /** Reads a Secret; undefined when absent. */
  getSecret(namespace: string, name: string): Promise<V1Secret | undefined> {
    return orNotFound(`get Secret ${namespace}/${name}`, () =>
      this.core.readNamespacedSecret({ namespace, name }),
    );
  }

  /** Creates a Secret; returns false when it already exists. */
  async createSecret(secret: V1Secret): Promise<boolean> {
    const namespace = secret.metadata?.namespace ?? '';
    try {
      await this.core.createNamespacedSecret({ namespace, body: secret });
      return true;
    } catch (err) {
      if (apiStatus(err) === 409) return false;
      throw kubeError(err, `create Secret ${namespace}/${secret.metadata?.name ?? ''}`);
    }
  }

  /** Replaces a Secret (its resourceVersion is checked: a concurrent writer gets a retryable 409). */
  async replaceSecret(secret: V1Secret): Promise<void> {
    const namespace = secret.metadata?.namespace ?? '';
    const name = secret.metadata?.name ?? '';
    await call(`replace Secret ${namespace}/${name}`, () =>
      this.core.replaceNamespacedSecret({ namespace, name, body: secret }),
    );
  }

  /** Deletes a Secret; absent is fine. */
  async deleteSecret(namespace: string, name: string): Promise<void> {
    await orNotFound(`delete Secret ${namespace}/${name}`, () =>
      this.core.deleteNamespacedSecret({ namespace, name }),
    );
  }

  /** Reads a ConfigMap; undefined when absent. */
  getConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
    return orNotFound(`get ConfigMap ${namespace}/${name}`, () =>
      this.core.readNamespacedConfigMap({ namespace, name }),
    );
  }

  /** Creates a ConfigMap, or replaces the one there (resourceVersion checked). */
  async applyConfigMap(cm: V1ConfigMap, existing: V1ConfigMap | undefined): Promise<void> {
    const namespace = cm.metadata?.namespace ?? '';
    const name = cm.metadata?.name ?? '';
    if (existing === undefined) {
      await call(`create ConfigMap ${namespace}/${name}`, () =>
        this.core.createNamespacedConfigMap({ namespace, body: cm }),
      );
      return;
    }
    const body: V1ConfigMap = {
      ...cm,
      metadata: { ...cm.metadata, resourceVersion: existing.metadata?.resourceVersion ?? '' },
    };
    await call(`replace ConfigMap ${namespace}/${name}`, () =>
      this.core.replaceNamespacedConfigMap({ namespace, name, body }),
    );
  }

  /** Creates a Service; returns false when it already exists. */
  async createService(service: V1Service): Promise<boolean> {
    const namespace = service.metadata?.namespace ?? '';
    try {
      await this.core.createNamespacedService({ namespace, body: service });
      return true;
    } catch (err) {
      if (apiStatus(err) === 409) return false;
      throw kubeError(err, `create Service ${namespace}/${service.metadata?.name ?? ''}`);
    }
  }

  /** A Service's cluster IP; undefined when it is missing or has none yet. */
  async getServiceClusterIp(namespace: string, name: string): Promise<string | undefined> {
    const svc = await orNotFound(`get Service ${namespace}/${name}`, () =>
      this.core.readNamespacedService({ namespace, name }),
    );
    const ip = svc?.spec?.clusterIP;
    return ip === undefined || ip === '' || ip === 'None' ? undefined : ip;
  }

  /**
   * Pods in `namespace` that mount the claim writable and have not finished (CDI
   * `GetPodsUsingPVCs` allowing read-only users, such as other clones' pods): read from the API,
   * since the pod informer watches CDI's own pods only.
   */
  async listPodsUsingClaim(namespace: string, claim: string): Promise<V1Pod[]> {
    const list = await call(`list Pods in ${namespace}`, () =>
      this.core.listNamespacedPod({ namespace }),
    );
    return list.items.filter(
      (pod) =>
        pod.status?.phase !== 'Succeeded' &&
        pod.status?.phase !== 'Failed' &&
        (pod.spec?.volumes ?? []).some(
          (v) =>
            v.persistentVolumeClaim?.claimName === claim &&
            v.persistentVolumeClaim.readOnly !== true,
        ),
    );
  }

  /** Deletes a Service; absent is fine. */
  async deleteService(namespace: string, name: string): Promise<void> {
    await orNotFound(`delete Service ${namespace}/${name}`, () =>
      this.core.deleteNamespacedService({ namespace, name }),
    );
  }

  /**
   * Sets an APIService's `spec.caBundle` (base64 PEM) unless it already has that value; returns
   * false when the APIService does not exist (not deployed, nothing to do).
   */
  async setApiServiceCaBundle(name: string, caBundle: string): Promise<boolean> {
    const current = await orNotFound(`get APIService ${name}`, () =>
      this.apiRegistration.readAPIService({ name }),
    );
    if (current === undefined) return false;
    if (current.spec?.caBundle === caBundle) return true;
    await call(`patch APIService ${name}`, () =>
      this.apiRegistration.patchAPIService({ name, body: { spec: { caBundle } } }, MERGE_PATCH),
    );
    return true;
  }

  /**
   * Writes `caBundle` (base64 PEM) into every webhook of a Mutating- or
   * ValidatingWebhookConfiguration; false when it does not exist (not installed, or a cluster
   * without admission webhooks).
   */
  async setWebhookCaBundle(
    kind: 'Mutating' | 'Validating',
    name: string,
    caBundle: string,
  ): Promise<boolean> {
    const what = `${kind}WebhookConfiguration ${name}`;
    const current = await orNotFound(`get ${what}`, () =>
      kind === 'Mutating'
        ? this.admission.readMutatingWebhookConfiguration({ name })
        : this.admission.readValidatingWebhookConfiguration({ name }),
    );
    if (current === undefined) return false;
    const hooks: readonly { clientConfig: { caBundle?: string } }[] = current.webhooks ?? [];
    const stale = hooks
      .map((h, i) => ({ i, current: h.clientConfig.caBundle }))
      .filter((h) => h.current !== caBundle);
    if (stale.length === 0) return true;
    const patch = stale.map((h) => ({
      op: 'add',
      path: `/webhooks/${h.i}/clientConfig/caBundle`,
      value: caBundle,
    }));
    await call(`patch ${what}`, () =>
      kind === 'Mutating'
        ? this.admission.patchMutatingWebhookConfiguration({ name, body: patch }, JSON_PATCH)
        : this.admission.patchValidatingWebhookConfiguration({ name, body: patch }, JSON_PATCH),
    );
    return true;
  }
}
