// SPDX-License-Identifier: Apache-2.0
/** Test support of the claim reconciles: default settings and config, and a compact action view. */
import type { Action } from '../actions.js';
import { effectiveConfig, parseControllerSettings } from '../config.js';

/** Settings as an unconfigured controller has them. */
export const testSettings = parseControllerSettings({}, 'test');

/** One default Immediate storage class. */
export const testConfig = effectiveConfig(undefined, [
  { name: 'standard', isDefault: true, volumeBindingMode: 'Immediate' },
]);

/** Actions as short lines: the kind plus what a test wants to see of it. */
export function summarize(actions: readonly Action[]): string[] {
  return actions.map((a) => {
    switch (a.kind) {
      case 'patchPvc':
        return `patch ${Object.entries(a.annotations)
          .map(([k, v]) => `${k.replace('cdi.kubevirt.io/storage.', '')}=${v ?? 'null'}`)
          .join(',')}${a.labels === undefined ? '' : ` labels=${JSON.stringify(a.labels)}`}`;
      case 'createPod':
        return `createPod ${a.pod.metadata?.name ?? ''}${a.scratch ? ' scratch' : ''}`;
      case 'createUploadPod':
        return `createUploadPod ${a.pod.metadata?.name ?? ''}`;
      case 'createService':
        return `createService ${a.service.metadata?.name ?? ''}`;
      case 'ensureUploadSecret':
        return `ensureUploadSecret ${a.pvc.metadata?.name ?? ''}`;
      case 'deletePod':
      case 'deleteService':
      case 'deleteSecret':
        return `${a.kind} ${a.name}`;
      case 'event':
        return `event ${a.type} ${a.reason}: ${a.message}`;
      default:
        return a.kind;
    }
  });
}
