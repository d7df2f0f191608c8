// SPDX-License-Identifier: Apache-2.0
/** Carries out a {@link CdiDecision} against the API server (the thin executor of `decide.ts`). */
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import {
  CDI_CONFIG_NAME,
  CDI_GROUP,
  CDI_VERSION,
  CdiResources,
} from '../../common/api/datavolume.js';
import type { EventRecorder } from '../events.js';
import type { KubeClient } from '../kube.js';
import { kubeError } from '../kube.js';
import type { CdiDecision } from './decide.js';
import { CDI_PLURAL, type Cdi } from './types.js';

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const JSON_PATCH = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

async function call(what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    throw kubeError(err, what);
  }
}

/** Applies the decision: resource patch, CDIConfig spec, status, and an Event when deletion waits. */
export async function applyCdiDecision(
  client: KubeClient,
  recorder: EventRecorder,
  cdi: Cdi,
  decision: CdiDecision,
): Promise<void> {
  const name = cdi.metadata.name ?? '';
  const custom = client.custom;
  if (decision.configSpec !== undefined) {
    // Replaced whole: a merge patch would keep keys the resource no longer sets.
    const body = [{ op: 'add', path: '/spec', value: decision.configSpec }];
    await call('update CDIConfig spec', () =>
      custom.patchClusterCustomObject(
        {
          group: CDI_GROUP,
          version: CDI_VERSION,
          plural: CdiResources.CdiConfigs,
          name: CDI_CONFIG_NAME,
          body,
        },
        JSON_PATCH,
      ),
    );
  }
  if (decision.patch !== undefined) {
    const body = decision.patch;
    await call(`update CDI ${name}`, () =>
      custom.patchClusterCustomObject(
        { group: CDI_GROUP, version: CDI_VERSION, plural: CDI_PLURAL, name, body },
        MERGE_PATCH,
      ),
    );
  }
  if (decision.status !== undefined) {
    const body = { status: decision.status };
    await call(`update CDI ${name} status`, () =>
      custom.patchClusterCustomObjectStatus(
        { group: CDI_GROUP, version: CDI_VERSION, plural: CDI_PLURAL, name, body },
        MERGE_PATCH,
      ),
    );
  }
  if (decision.blocked !== undefined) {
    await recorder.record({
      kind: 'event',
      target: {
        kind: 'CDI',
        apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
        name,
        namespace: 'default',
        uid: cdi.metadata.uid ?? '',
      },
      type: 'Warning',
      reason: 'UninstallBlocked',
      message: decision.blocked,
    });
  }
}
