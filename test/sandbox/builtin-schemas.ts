// SPDX-License-Identifier: Apache-2.0
/**
 * OpenAPI schemas of the built-in kinds, for `kubectl explain`. Only the claim's spec is spelled
 * out field by field (it is what CDI users read about next to DataVolumes); every other
 * built-in kind gets an object with apiVersion, kind, metadata, spec and status, so that explain
 * finds the kind and says what it is.
 */

/** An OpenAPI v3 schema (the parts used here). */
export type Schema = Readonly<Record<string, unknown>>;

const str = (description: string): Schema => ({ type: 'string', description });
const strList = (description: string): Schema => ({
  type: 'array',
  description,
  items: { type: 'string', default: '' },
});
const refFields = (kind: string): Record<string, Schema> => ({
  apiGroup: str('The group of the referenced kind; empty for the core group.'),
  kind: str(`The kind of the referenced object (${kind}).`),
  name: str('The name of the referenced object.'),
});

/** `PersistentVolumeClaimSpec`, in our own words. */
const PVC_SPEC: Schema = {
  type: 'object',
  description:
    'PersistentVolumeClaimSpec describes the storage a claim asks for: its access modes, size, class, and where its first content comes from.',
  properties: {
    accessModes: strList(
      'How the volume may be mounted: ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod.',
    ),
    dataSource: {
      type: 'object',
      description:
        'An object to populate the volume from when it is created: a VolumeSnapshot, another PersistentVolumeClaim, or a populator resource.',
      properties: refFields('VolumeSnapshot, PersistentVolumeClaim, ...'),
      required: ['kind', 'name'],
    },
    dataSourceRef: {
      type: 'object',
      description:
        'Like dataSource, but may name an object of any group and, with the CrossNamespaceVolumeDataSource feature, another namespace.',
      properties: {
        ...refFields('any'),
        namespace: str("The namespace of the referenced object, when it is not the claim's."),
      },
      required: ['kind', 'name'],
    },
    resources: {
      type: 'object',
      description: 'The minimum (requests) and maximum (limits) storage the claim may have.',
      properties: {
        limits: {
          type: 'object',
          description: 'The most storage allowed, e.g. {"storage": "10Gi"}.',
          additionalProperties: { type: 'string', format: 'quantity' },
        },
        requests: {
          type: 'object',
          description: 'The storage the claim needs, e.g. {"storage": "10Gi"}.',
          additionalProperties: { type: 'string', format: 'quantity' },
        },
      },
    },
    selector: {
      type: 'object',
      description: 'A label query over PersistentVolumes that may be bound to this claim.',
      properties: {
        matchExpressions: {
          type: 'array',
          description: 'Requirements (key, operator In/NotIn/Exists/DoesNotExist, values).',
          items: { type: 'object' },
        },
        matchLabels: {
          type: 'object',
          description: 'Labels a volume must carry, all of them.',
          additionalProperties: { type: 'string' },
        },
      },
    },
    storageClassName: str(
      'The StorageClass the claim asks for; the default class when unset, none when empty.',
    ),
    volumeAttributesClassName: str('The VolumeAttributesClass the claim uses, if any.'),
    volumeMode: str('Filesystem (the default) or Block: whether the volume is formatted.'),
    volumeName: str('The PersistentVolume bound to this claim.'),
  },
};

/** Descriptions of the built-in kinds, and the full schema where there is one. */
const BUILTIN: Readonly<Record<string, { readonly description: string; readonly spec?: Schema }>> =
  {
    PersistentVolumeClaim: {
      description:
        "PersistentVolumeClaim is a user's request for storage, bound to a PersistentVolume that satisfies it.",
      spec: PVC_SPEC,
    },
    PersistentVolume: { description: 'PersistentVolume is a piece of storage in the cluster.' },
    Pod: { description: 'Pod is a group of containers scheduled together on one node.' },
    Secret: { description: 'Secret holds a small amount of sensitive data, as base64 strings.' },
    ConfigMap: { description: 'ConfigMap holds configuration data as key-value pairs.' },
    Namespace: { description: 'Namespace scopes the names of namespaced objects.' },
    ServiceAccount: { description: 'ServiceAccount is the identity of processes in pods.' },
    Service: { description: 'Service names a set of pods and a stable address to reach them.' },
    Event: { description: 'Event reports something that happened to an object.' },
    StorageClass: {
      description: 'StorageClass describes a class of dynamically provisioned storage.',
    },
  };

/** The schema of a built-in kind for `kubectl explain`. */
export function builtinSchema(kind: string): Schema {
  const known = BUILTIN[kind];
  return {
    type: 'object',
    description: known?.description ?? `${kind} is a built-in Kubernetes kind.`,
    properties: {
      apiVersion: str('The versioned schema of this representation of an object.'),
      kind: str('The REST resource this object represents.'),
      metadata: {
        type: 'object',
        description: "Standard object's metadata: name, namespace, labels, annotations, ...",
      },
      spec: known?.spec ?? { type: 'object', description: `The desired state of the ${kind}.` },
      status: { type: 'object', description: `The observed state of the ${kind}.` },
    },
  };
}
