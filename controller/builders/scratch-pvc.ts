// SPDX-License-Identifier: Apache-2.0
/**
 * The scratch claim `<pvc>-scratch`, made only when an importer reports it needs one (our importer
 * streams, so this is rare). Owned by the importer pod, so it goes away with the pod; sized as CDI
 * does: the image that fits the target, plus the scratch class's filesystem overhead. Pure.
 */
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { Labels } from '../../common/contract.js';
import { parseQuantity } from '../../common/quantity.js';
import { filesystemOverheadFor, resolveStorageClass, type EffectiveConfig } from '../config.js';
import { scratchPvcName } from './naming.js';
import { requiredSpace, roundUpMiB, usableSpace } from './size.js';

/** Builds the scratch claim of `target`, owned by the importer `pod` (which must carry its uid). */
export function buildScratchPvc(
  target: V1PersistentVolumeClaim,
  pod: V1Pod,
  config: EffectiveConfig,
): V1PersistentVolumeClaim {
  const targetClass = target.spec?.storageClassName;
  const targetBytes = parseQuantity(String(target.spec?.resources?.requests?.['storage'] ?? '0'));
  const block = target.spec?.volumeMode === 'Block';
  const expectedImage = block
    ? targetBytes
    : usableSpace(targetBytes, filesystemOverheadFor(config, targetClass));
  const configured = config.status.scratchSpaceStorageClass ?? '';
  const scratchClass = configured !== '' ? configured : resolveStorageClass(config, targetClass);
  const size = roundUpMiB(
    requiredSpace(expectedImage, filesystemOverheadFor(config, scratchClass)),
  );
  const copied = Object.fromEntries(
    Object.entries(target.metadata?.annotations ?? {}).filter(
      ([k]) => k.includes('kubevirt.io/') && !k.startsWith('cdi.kubevirt.io/'),
    ),
  );
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: scratchPvcName(target.metadata?.name ?? ''),
      namespace: target.metadata?.namespace ?? '',
      labels: { [Labels.App]: Labels.AppValue, [Labels.VeleroExclude]: 'true' },
      annotations: copied,
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'Pod',
          name: pod.metadata?.name ?? '',
          uid: pod.metadata?.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      volumeMode: 'Filesystem',
      resources: { requests: { storage: String(size) } },
      ...(scratchClass === undefined ? {} : { storageClassName: scratchClass }),
    },
  };
}
