// SPDX-License-Identifier: Apache-2.0
/**
 * The PVC webhook's cluster reads: the default StorageClass (annotated
 * `storageclass.kubernetes.io/is-default-class: "true"`) and a class's StorageProfile.
 */
import { CustomObjectsApi, StorageV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { ClaimPropertySet, StorageProfile } from '../../common/api/datavolume.js';
import { ForeignAnnotations } from '../../common/contract.js';
import { httpCode, kubeError } from '../protocol/kube-client.js';
import type { PvcMutateDeps } from './pvc-mutate.js';

/** {@link PvcMutateDeps} talking to the cluster of `kc`. */
export function kubePvcMutateDeps(kc: KubeConfig): PvcMutateDeps {
  const storage = kc.makeApiClient(StorageV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const defaultClass = async (): Promise<string | undefined> => {
    let classes;
    try {
      classes = await storage.listStorageClass();
    } catch (err) {
      throw kubeError('cannot list StorageClasses', err);
    }
    // Kubernetes picks the newest when several are marked default.
    const marked = classes.items
      .filter((c) => c.metadata?.annotations?.[ForeignAnnotations.DefaultStorageClass] === 'true')
      .sort(
        (a, b) =>
          (b.metadata?.creationTimestamp?.getTime() ?? 0) -
          (a.metadata?.creationTimestamp?.getTime() ?? 0),
      );
    return marked[0]?.metadata?.name;
  };
  return {
    async claimPropertySets(storageClassName) {
      const name = storageClassName ?? (await defaultClass());
      if (name === undefined) return [];
      let profile: StorageProfile;
      try {
        profile = (await custom.getClusterCustomObject({
          group: 'cdi.kubevirt.io',
          version: 'v1beta1',
          plural: 'storageprofiles',
          name,
        })) as StorageProfile;
      } catch (err) {
        if (httpCode(err) === 404) return [];
        throw kubeError(`cannot read StorageProfile ${name}`, err);
      }
      const sets: readonly ClaimPropertySet[] = profile.status?.claimPropertySets ?? [];
      return sets;
    },
  };
}
