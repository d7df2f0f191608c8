// SPDX-License-Identifier: Apache-2.0
/**
 * The target claim of a DataVolume, named, labelled and annotated as the Go CDI does
 * (`pkg/controller/datavolume/controller-base.go`, `util.go`): the DataVolume's source becomes the
 * `storage.import.*` annotations the import reconcile reads, so a DataVolume import and a bare
 * annotated-PVC import run the same code. Pure.
 */
import type { V1PersistentVolumeClaim, V1PersistentVolumeClaimSpec } from '@kubernetes/client-node';
import { Annotations, ContentTypes, Labels, SourceKinds } from '../../common/contract.js';
import type { ClaimSpec, DataVolume, DataVolumeSource } from '../../common/api/datavolume.js';
import { CDI_GROUP, CDI_VERSION } from '../../common/api/datavolume.js';
import { parseQuantity } from '../../common/quantity.js';
import { chooseStorageModes, type StorageModes } from '../../common/datavolume/storage-modes.js';
import {
  FeatureGates,
  claimPropertySetsFor,
  defaultVirtStorageClass,
  featureGateEnabled,
  filesystemOverheadFor,
  type EffectiveConfig,
} from '../config.js';
import { claimRefText, type ClaimRef } from './claim.js';
import { importerPodName } from './naming.js';
import { defaultCloneSize, type SizedClaim } from './clone-size.js';
import { requiredSpace } from './size.js';

/** What the target claim of a clone needs to know about its source. */
export interface CloneTargetSource {
  readonly ref: ClaimRef;
  /** The source claim's size and mode (undefined when unknown: no size defaulting). */
  readonly source: SizedClaim | undefined;
}

/**
 * The claim spec a DataVolume renders to (the `storage` API gets defaults and overhead; a clone
 * with `storage` and no size gets the source's size, already a claim size, so not inflated).
 */
export function renderClaimSpec(
  dv: DataVolume,
  config: EffectiveConfig,
  clone?: CloneTargetSource,
): V1PersistentVolumeClaimSpec {
  const spec = dv.spec ?? {};
  if (spec.pvc !== undefined) return copyClaim(spec.pvc);
  const asked: ClaimSpec = spec.storage ?? {};
  const virtDefault =
    asked.storageClassName === undefined || asked.storageClassName === ''
      ? defaultVirtStorageClass(config)
      : undefined;
  // The default virt class is named on the claim, else the API server would give the cluster's.
  const storage: ClaimSpec =
    virtDefault === undefined ? asked : { ...asked, storageClassName: virtDefault };
  const rendered = copyClaim(storage);
  const modes = storageModes(storage, config);
  rendered.accessModes = modes.accessModes;
  const volumeMode = modes.volumeMode;
  rendered.volumeMode = volumeMode;
  const size = storage.resources?.requests?.['storage'];
  if (size !== undefined && volumeMode === 'Filesystem') {
    const overhead = filesystemOverheadFor(config, storage.storageClassName);
    const inflated = requiredSpace(parseQuantity(String(size)), overhead);
    rendered.resources = {
      ...rendered.resources,
      requests: { ...rendered.resources?.requests, storage: String(inflated) },
    };
  } else if (size === undefined && clone?.source !== undefined) {
    const bytes = defaultCloneSize(
      clone.source,
      { block: volumeMode === 'Block', storageClassName: storage.storageClassName },
      config,
    );
    rendered.resources = {
      ...rendered.resources,
      requests: { ...rendered.resources?.requests, storage: String(bytes) },
    };
  }
  return rendered;
}

/**
 * Access and volume modes of a DataVolume's `storage` claim (CDI `renderPvcSpec`), from the
 * claim class's StorageProfile (the default class when none is named): {@link chooseStorageModes}.
 */
export function storageModes(storage: ClaimSpec, config: EffectiveConfig): StorageModes {
  return chooseStorageModes(storage, claimPropertySetsFor(config, storage.storageClassName));
}

function copyClaim(claim: ClaimSpec): V1PersistentVolumeClaimSpec {
  // A deep copy through JSON: the claim came from JSON and must not alias the DataVolume.
  const copy = JSON.parse(JSON.stringify(claim)) as V1PersistentVolumeClaimSpec;
  if (copy.volumeMode === 'FromStorageProfile') copy.volumeMode = 'Filesystem';
  return copy;
}

/** The `storage.import.*` annotations that describe a DataVolume source. */
export function sourceAnnotations(source: DataVolumeSource | undefined): Record<string, string> {
  const anns: Record<string, string> = {};
  const set = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== '') anns[key] = value;
  };
  if (source?.http !== undefined) {
    const http = source.http;
    set(Annotations.Source, SourceKinds.Http);
    set(Annotations.Endpoint, http.url);
    set(Annotations.SecretName, http.secretRef);
    set(Annotations.CertConfigMap, http.certConfigMap);
    set(Annotations.Checksum, http.checksum);
    if (http.insecureSkipVerify === true) anns[Annotations.InsecureSkipVerify] = 'true';
    (http.extraHeaders ?? []).forEach((h, i) => set(`${Annotations.ExtraHeadersPrefix}.${i}`, h));
    (http.secretExtraHeaders ?? []).forEach((s, i) =>
      set(`${Annotations.SecretExtraHeadersPrefix}.${i}`, s),
    );
  } else if (source?.s3 !== undefined) {
    set(Annotations.Source, SourceKinds.S3);
    set(Annotations.Endpoint, source.s3.url);
    set(Annotations.SecretName, source.s3.secretRef);
    set(Annotations.CertConfigMap, source.s3.certConfigMap);
  } else if (source?.gcs !== undefined) {
    set(Annotations.Source, SourceKinds.Gcs);
    set(Annotations.Endpoint, source.gcs.url);
    set(Annotations.SecretName, source.gcs.secretRef);
  } else if (source?.registry !== undefined) {
    const reg = source.registry;
    set(Annotations.Source, SourceKinds.Registry);
    set(Annotations.Endpoint, reg.url);
    set(Annotations.SecretName, reg.secretRef);
    set(Annotations.CertConfigMap, reg.certConfigMap);
    set(Annotations.RegistryImportMethod, reg.pullMethod);
    set(Annotations.RegistryImageArchitecture, reg.platform?.architecture);
  } else if (source?.blank !== undefined) {
    set(Annotations.Source, SourceKinds.None);
  } else if (source?.upload !== undefined) {
    anns[Annotations.UploadTarget] = '';
  }
  return anns;
}

/** Names the importer pod of an import or host-assisted clone target (not an upload target). */
function nameImporterPod(annotations: Record<string, string>, claimName: string): void {
  if (Annotations.UploadTarget in annotations) return;
  const imports =
    Annotations.Source in annotations ||
    Annotations.Endpoint in annotations ||
    Annotations.CloneRequest in annotations;
  if (imports) annotations[Annotations.ImportPodName] = importerPodName(claimName);
}

/**
 * Builds the target claim of a DataVolume: same name and namespace, owned by it. A clone's target
 * carries CDI's `k8s.io/CloneRequest` naming its source, which makes the import reconcile copy it.
 */
export function buildTargetPvc(
  dv: DataVolume,
  config: EffectiveConfig,
  clone?: CloneTargetSource,
): V1PersistentVolumeClaim {
  const spec = dv.spec ?? {};
  const claimSpec = renderClaimSpec(dv, config, clone);
  const labels: Record<string, string> = {
    ...dv.metadata.labels,
    [Labels.App]: Labels.AppValue,
  };
  if ((claimSpec.volumeMode ?? 'Filesystem') === 'Filesystem')
    labels[Labels.FillingUpAlert] = 'disabled';
  const preallocation = spec.preallocation ?? config.status.preallocation ?? false;
  const annotations: Record<string, string> = {
    ...dv.metadata.annotations,
    ...sourceAnnotations(spec.source),
    [Annotations.ContentType]:
      spec.contentType === undefined || spec.contentType === ''
        ? ContentTypes.Kubevirt
        : spec.contentType,
    [Annotations.PreallocationRequested]: String(preallocation),
    [Annotations.PodRestarts]: '0',
    [Annotations.CreatedForDataVolume]: dv.metadata.uid ?? '',
  };
  if (clone !== undefined) annotations[Annotations.CloneRequest] = claimRefText(clone.ref);
  const targetNamespace = dv.metadata.namespace ?? '';
  if (clone !== undefined && clone.ref.namespace !== targetNamespace) {
    // A network clone (ADR 0022): the target is served by an upload server that accepts only the
    // clone source pod's client certificate, named as CDI names it.
    annotations[Annotations.UploadTarget] = '';
    annotations[Annotations.UploadClientName] =
      `${claimRefText(clone.ref)}-${targetNamespace}/${dv.metadata.name ?? ''}`;
  }
  // An import's pod name is known now: naming it here spares the claim the patch that would name
  // it before the pod is made (one write fewer per DataVolume; the name is derived the same way).
  nameImporterPod(annotations, dv.metadata.name ?? '');
  // CDI `AddImmediateBindingAnnotationIfWFFCDisabled`: with the gate off, the transfer pod is the
  // claim's first consumer.
  if (!featureGateEnabled(config, FeatureGates.HonorWaitForFirstConsumer))
    annotations[Annotations.BindImmediate] = 'true';
  if (spec.priorityClassName !== undefined && spec.priorityClassName !== '') {
    annotations[Annotations.PriorityClassName] = spec.priorityClassName;
  }
  if (spec.serviceAccountName !== undefined && spec.serviceAccountName !== '') {
    annotations[Annotations.ServiceAccountName] = spec.serviceAccountName;
  }
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: dv.metadata.name ?? '',
      namespace: dv.metadata.namespace ?? '',
      labels,
      annotations,
      ownerReferences: [
        {
          apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
          kind: 'DataVolume',
          name: dv.metadata.name ?? '',
          uid: dv.metadata.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: claimSpec,
  };
}
