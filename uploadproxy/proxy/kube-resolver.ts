// SPDX-License-Identifier: Apache-2.0
/**
 * The resolver the proxy uses to find a PVC's upload server (Service `cdi-upload-<pvc>`, ready when
 * the PVC's `storage.pod.ready` is "true"). The upload server is addressed by its Service's DNS name
 * (`dns`, as CDI does) or by the Service's clusterIP (`cluster-ip`, for a proxy that cannot resolve
 * cluster DNS, such as one running outside the cluster network); TLS is checked against the DNS name
 * either way.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { Annotations, UPLOAD_SERVER_PORT, uploadServiceName } from '../../common/contract.js';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { httpCode, kubeError } from '../protocol/kube-client.js';
import type { UploadBackend, UploadResolver } from './proxy.js';
import type { UploadServerAddressMode } from './address-mode.js';

/** Options of {@link kubeUploadResolver}. */
export interface KubeUploadResolverOptions {
  /** DNS suffix after the namespace in `dns` mode (default `svc`). */
  readonly clusterDomain?: string;
  /** `dns` (default): `https://cdi-upload-<pvc>.<ns>.<domain>:8443`; `cluster-ip`: the Service's clusterIP. */
  readonly address?: UploadServerAddressMode;
}

/** Resolves a PVC's upload server through the Kubernetes API (CDI's `urlResolver` + `uploadPossible`). */
export function kubeUploadResolver(
  kc: KubeConfig,
  options: KubeUploadResolverOptions = {},
): UploadResolver {
  const core = kc.makeApiClient(CoreV1Api);
  const domain = options.clusterDomain ?? 'svc';
  const byClusterIp = options.address === 'cluster-ip';
  return async (t) => {
    let annotations: Record<string, string>;
    try {
      const pvc = await core.readNamespacedPersistentVolumeClaim({
        name: t.pvc,
        namespace: t.namespace,
      });
      annotations = pvc.metadata?.annotations ?? {};
    } catch (err) {
      if (httpCode(err) === 404)
        throw new CdiError(
          ErrorCodes.UploadNotReady,
          `rejecting Upload Request for PVC ${t.pvc} that doesn't exist`,
          {
            httpStatus: 503,
          },
        );
      throw kubeError(`cannot read PVC ${t.namespace}/${t.pvc}`, err);
    }
    if (!(Annotations.UploadTarget in annotations))
      throw new CdiError(ErrorCodes.UploadNotReady, `PVC ${t.pvc} is not an upload target`, {
        httpStatus: 503,
      });
    if (annotations[Annotations.PodPhase] === 'Succeeded')
      throw new CdiError(
        ErrorCodes.UploadNotReady,
        `rejecting Upload Request for PVC ${t.pvc} that already finished uploading`,
        {
          httpStatus: 503,
        },
      );
    const contentType = annotations[Annotations.ContentType];
    if (
      contentType !== undefined &&
      contentType !== '' &&
      contentType !== 'kubevirt' &&
      contentType !== 'archive'
    )
      throw new CdiError(
        ErrorCodes.UploadNotReady,
        `rejecting Upload Request for PVC ${t.pvc}: upload content-type ${contentType} is invalid`,
        {
          httpStatus: 503,
        },
      );
    const ready = annotations[Annotations.PodReady] === 'true';
    const extra = contentType === undefined ? {} : { contentType };
    const service = uploadServiceName(t.pvc);
    if (!byClusterIp) {
      return {
        url: `https://${service}.${t.namespace}.${domain}:${UPLOAD_SERVER_PORT}`,
        ready,
        ...extra,
      };
    }
    return clusterIpBackend(core, { ...t, service, ready }, extra);
  };
}

/**
 * The backend at the Service's clusterIP, checked as `<service>.<ns>.svc`; not ready while the
 * PVC is not, or the Service does not exist yet (the proxy polls, as for a PVC not ready).
 */
async function clusterIpBackend(
  core: CoreV1Api,
  t: { readonly namespace: string; readonly service: string; readonly ready: boolean },
  extra: { readonly contentType?: string },
): Promise<UploadBackend> {
  const servername = `${t.service}.${t.namespace}.svc`;
  const ip = t.ready ? await serviceClusterIp(core, t.namespace, t.service) : undefined;
  if (ip === undefined)
    return {
      url: `https://${servername}:${UPLOAD_SERVER_PORT}`,
      ready: false,
      servername,
      ...extra,
    };
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return { url: `https://${host}:${UPLOAD_SERVER_PORT}`, ready: true, servername, ...extra };
}

/** The Service's clusterIP; undefined while it does not exist or has none (headless). */
async function serviceClusterIp(
  core: CoreV1Api,
  namespace: string,
  name: string,
): Promise<string | undefined> {
  try {
    const svc = await core.readNamespacedService({ name, namespace });
    const ip = svc.spec?.clusterIP;
    return ip === undefined || ip === '' || ip === 'None' ? undefined : ip;
  } catch (err) {
    if (httpCode(err) === 404) return undefined;
    throw kubeError(`cannot read Service ${namespace}/${name}`, err);
  }
}
