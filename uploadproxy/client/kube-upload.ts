// SPDX-License-Identifier: Apache-2.0
/**
 * The Kubernetes half of `cdi upload` (virtctl `image-upload`): create the DataVolume or PVC when
 * missing, wait until its upload server is ready, mint a token through the aggregated API, find
 * the upload proxy's URL in CDIConfig, and wait for the end.
 */
import { setTimeout as delay } from 'node:timers/promises';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1PersistentVolumeClaim,
} from '@kubernetes/client-node';
import { Annotations, type ContentType } from '../../common/contract.js';
import { CdiError, ErrorCodes, errorMessage } from '../../common/errors.js';
import { UPLOAD_API } from '../protocol/paths.js';

/** What the user asked `cdi upload` to upload into. */
export interface UploadVolume {
  readonly namespace: string;
  readonly name: string;
  /** A DataVolume (`--dv`) or a bare PVC (`--pvc`). */
  readonly kind: 'dv' | 'pvc';
  /** Needed only to create it. */
  readonly size?: string;
  readonly storageClass?: string;
  readonly accessMode?: string;
  /** `Block` or `Filesystem`; the storage profile decides when absent. */
  readonly volumeMode?: 'Block' | 'Filesystem';
  /** `archive` (virtctl `--archive-path`): a tar extracted into the volume. */
  readonly contentType?: ContentType;
  /** Bind a WaitForFirstConsumer claim at once (virtctl `--force-bind`). */
  readonly forceBind: boolean;
}

const CDI_GROUP = 'cdi.kubevirt.io';
const CDI_VERSION = 'v1beta1';

function httpCode(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number')
    return err.code;
  return undefined;
}

function kubeError(what: string, err: unknown): CdiError {
  return new CdiError(ErrorCodes.KubeApi, `${what}: ${errorMessage(err)}`, { cause: err });
}

/** Talks to the cluster for `cdi upload`. */
export class UploadVolumeClient {
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #pollMs: number;

  constructor(kc: KubeConfig, options: { readonly pollMs?: number } = {}) {
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    this.#pollMs = options.pollMs ?? 1000;
  }

  /** Creates the volume unless it exists; returns whether it created it. */
  async ensure(v: UploadVolume, create: boolean): Promise<boolean> {
    if ((await this.#read(v)) !== undefined) return false;
    if (!create)
      throw new CdiError(
        ErrorCodes.InvalidArgument,
        `${v.kind === 'dv' ? 'DataVolume' : 'PVC'} ${v.namespace}/${v.name} does not exist (--no-create)`,
      );
    if (v.size === undefined)
      throw new CdiError(ErrorCodes.InvalidArgument, '--size is required to create the volume');
    const spec = {
      ...(v.accessMode === undefined ? {} : { accessModes: [v.accessMode] }),
      ...(v.volumeMode === undefined ? {} : { volumeMode: v.volumeMode }),
      ...(v.storageClass === undefined ? {} : { storageClassName: v.storageClass }),
      resources: { requests: { storage: v.size } },
    };
    const annotations: Record<string, string> = {
      ...(v.forceBind ? { [Annotations.BindImmediate]: 'true' } : {}),
    };
    try {
      if (v.kind === 'dv') {
        await this.#custom.createNamespacedCustomObject({
          group: CDI_GROUP,
          version: CDI_VERSION,
          namespace: v.namespace,
          plural: 'datavolumes',
          body: {
            apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
            kind: 'DataVolume',
            metadata: {
              name: v.name,
              namespace: v.namespace,
              ...(Object.keys(annotations).length === 0 ? {} : { annotations }),
            },
            spec: {
              source: { upload: {} },
              ...(v.contentType === undefined ? {} : { contentType: v.contentType }),
              storage: spec,
            },
          },
        });
      } else {
        await this.#core.createNamespacedPersistentVolumeClaim({
          namespace: v.namespace,
          body: {
            metadata: {
              name: v.name,
              namespace: v.namespace,
              annotations: {
                ...annotations,
                [Annotations.UploadTarget]: '',
                ...(v.contentType === undefined
                  ? {}
                  : { [Annotations.ContentType]: v.contentType }),
              },
            },
            spec,
          },
        });
      }
    } catch (err) {
      throw kubeError(
        `cannot create ${v.kind === 'dv' ? 'DataVolume' : 'PVC'} ${v.namespace}/${v.name}`,
        err,
      );
    }
    return true;
  }

  async #read(v: UploadVolume): Promise<Record<string, unknown> | undefined> {
    try {
      if (v.kind === 'dv') {
        return (await this.#custom.getNamespacedCustomObject({
          group: CDI_GROUP,
          version: CDI_VERSION,
          namespace: v.namespace,
          plural: 'datavolumes',
          name: v.name,
        })) as Record<string, unknown>;
      }
      return (await this.#core.readNamespacedPersistentVolumeClaim({
        name: v.name,
        namespace: v.namespace,
      })) as unknown as Record<string, unknown>;
    } catch (err) {
      if (httpCode(err) === 404) return undefined;
      throw kubeError(`cannot read ${v.namespace}/${v.name}`, err);
    }
  }

  /** The DataVolume phase, or for a PVC its upload pod's phase/readiness, in DV words. */
  async phase(v: UploadVolume): Promise<string | undefined> {
    const obj = await this.#read(v);
    if (obj === undefined) return undefined;
    if (v.kind === 'dv') {
      const status = obj['status'] as { phase?: unknown } | undefined;
      return typeof status?.phase === 'string' ? status.phase : undefined;
    }
    const annotations = (obj as V1PersistentVolumeClaim).metadata?.annotations ?? {};
    const podPhase = annotations[Annotations.PodPhase];
    if (podPhase === 'Succeeded') return 'Succeeded';
    if (podPhase === 'Failed') return 'Failed';
    return annotations[Annotations.PodReady] === 'true' ? 'UploadReady' : 'UploadScheduled';
  }

  /** Polls until the phase is one of `wanted`; `Failed` or the deadline is an error. */
  async waitPhase(
    v: UploadVolume,
    wanted: readonly string[],
    o: { readonly timeoutMs: number; readonly signal: AbortSignal },
  ): Promise<string> {
    const deadline = Date.now() + o.timeoutMs;
    let last: string | undefined;
    for (;;) {
      last = await this.phase(v);
      if (last !== undefined && wanted.includes(last)) return last;
      if (last === 'Failed')
        throw new CdiError(ErrorCodes.UploadNotReady, `${v.namespace}/${v.name} failed`);
      if (Date.now() >= deadline)
        throw new CdiError(
          ErrorCodes.UploadNotReady,
          `timed out waiting for ${v.namespace}/${v.name} to be ${wanted.join(' or ')} (phase ${last ?? 'unknown'})`,
        );
      await delay(this.#pollMs, undefined, { signal: o.signal });
    }
  }

  /** Mints an upload token through the aggregated API (`status.token`). */
  async token(v: UploadVolume): Promise<string> {
    let answer: unknown;
    try {
      answer = await this.#custom.createNamespacedCustomObject({
        group: UPLOAD_API.group,
        version: UPLOAD_API.version,
        namespace: v.namespace,
        plural: UPLOAD_API.resource,
        body: {
          apiVersion: `${UPLOAD_API.group}/${UPLOAD_API.version}`,
          kind: UPLOAD_API.kind,
          metadata: { name: v.name, namespace: v.namespace },
          spec: { pvcName: v.name },
        },
      });
    } catch (err) {
      throw kubeError('cannot get an upload token', err);
    }
    const token = (answer as { status?: { token?: unknown } } | undefined)?.status?.token;
    if (typeof token !== 'string' || token === '')
      throw new CdiError(ErrorCodes.KubeApi, 'the upload token request returned no token');
    return token;
  }

  /** CDIConfig `status.uploadProxyURL`, as virtctl reads it. */
  async proxyUrl(): Promise<string> {
    let config: unknown;
    try {
      config = await this.#custom.getClusterCustomObject({
        group: CDI_GROUP,
        version: CDI_VERSION,
        plural: 'cdiconfigs',
        name: 'config',
      });
    } catch (err) {
      throw kubeError(
        'cannot read CDIConfig config for the upload proxy URL (pass --uploadproxy-url)',
        err,
      );
    }
    const url = (config as { status?: { uploadProxyURL?: unknown } } | undefined)?.status
      ?.uploadProxyURL;
    if (typeof url !== 'string' || url === '')
      throw new CdiError(
        ErrorCodes.InvalidArgument,
        'CDIConfig has no uploadProxyURL; pass --uploadproxy-url',
      );
    return /^https?:\/\//.test(url) ? url : `https://${url}`;
  }
}
