// SPDX-License-Identifier: Apache-2.0
/**
 * The `scale` subresource of Deployments and ReplicaSets (`kubectl scale`): an `autoscaling/v1`
 * Scale read from the object's `spec.replicas`, `status.replicas` and label selector; a PUT or
 * PATCH of the Scale sets `spec.replicas` on the object.
 */
import { ApiStatusError, StatusReasons } from './api-errors.js';
import type { ObjectApi } from './object-api.js';
import { getPath, isRecord, type KObject } from './object.js';
import { jsonPatch, mergePatch, PatchTypes, strategicMergePatch } from './patch.js';
import type { ResourceType } from './resources.js';

/** True for the kinds that serve `/scale` here. */
export function hasScale(type: ResourceType): boolean {
  return type.group === 'apps' && (type.plural === 'deployments' || type.plural === 'replicasets');
}

/** The Scale of an object (pure). */
export function scaleOf(obj: KObject): KObject {
  const matchLabels = getPath(obj, ['spec', 'selector', 'matchLabels']);
  const selector = isRecord(matchLabels)
    ? Object.entries(matchLabels)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(',')
    : '';
  const replicas = getPath(obj, ['spec', 'replicas']);
  const current = getPath(obj, ['status', 'replicas']);
  return {
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: {
      name: obj.metadata.name ?? '',
      ...(obj.metadata.namespace === undefined ? {} : { namespace: obj.metadata.namespace }),
      ...(obj.metadata.uid === undefined ? {} : { uid: obj.metadata.uid }),
      ...(obj.metadata.resourceVersion === undefined
        ? {}
        : { resourceVersion: obj.metadata.resourceVersion }),
      ...(obj.metadata.creationTimestamp === undefined
        ? {}
        : { creationTimestamp: obj.metadata.creationTimestamp }),
    },
    spec: { replicas: typeof replicas === 'number' ? replicas : 1 },
    status: { replicas: typeof current === 'number' ? current : 0, selector },
  };
}

/** The Scale a PATCH body of `contentType` makes of `current` (json, merge or strategic). */
export function patchedScale(current: KObject, contentType: string, body: unknown): unknown {
  if (contentType === PatchTypes.Json) return jsonPatch(current, body);
  if (contentType === PatchTypes.Strategic) return strategicMergePatch(current, body);
  return mergePatch(current, body);
}

/** Sets the object's `spec.replicas` from a Scale; returns the new Scale. */
export function writeScale(
  api: ObjectApi,
  type: ResourceType,
  namespace: string,
  name: string,
  scale: unknown,
): KObject {
  const replicas = getPath(scale, ['spec', 'replicas']);
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw new ApiStatusError(
      422,
      StatusReasons.Invalid,
      `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas ?? null)}: must be greater than or equal to 0`,
    );
  }
  const obj = api.get(type, namespace, name);
  const spec = isRecord(obj['spec']) ? obj['spec'] : {};
  return scaleOf(api.update(type, namespace, name, { ...obj, spec: { ...spec, replicas } }));
}
