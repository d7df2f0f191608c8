// SPDX-License-Identifier: Apache-2.0
/**
 * Reads the protobuf encoding client-go uses for built-in kinds
 * (`Content-Type: application/vnd.kubernetes.protobuf`): the 4-byte magic `k8s\0`, then a
 * `runtime.Unknown` envelope whose `raw` field holds the object's generated message. kubectl
 * sends its `create` generators (namespace, configmap, secret, serviceaccount, token) and
 * `kubectl run` this way. The object is turned into the JSON the rest of the sandbox speaks.
 *
 * Field numbers are those of k8s.io/api's generated.proto files. Only the kinds and fields those
 * commands send are known; any other field is refused (415) rather than silently dropped.
 */
import { ApiStatusError, StatusReasons } from './api-errors.js';

/** The protobuf media type of client-go. */
export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** What a field holds: a scalar, a message (by name), or a map of scalars or messages. */
type Scalar = 'string' | 'bytes' | 'bool' | 'int';
type Kind = Scalar | { readonly msg: string } | { readonly map: Scalar | { readonly msg: string } };

interface Field {
  readonly name: string;
  readonly kind: Kind;
  readonly repeated?: boolean;
  /** Embedded Go struct: its fields appear in the parent's JSON (LocalObjectReference). */
  readonly inline?: boolean;
}

type Schema = Readonly<Record<number, Field>>;

const s = (name: string): Field => ({ name, kind: 'string' });
const sl = (name: string): Field => ({ name, kind: 'string', repeated: true });
const b = (name: string): Field => ({ name, kind: 'bool' });
const i = (name: string): Field => ({ name, kind: 'int' });
const m = (name: string, msg: string): Field => ({ name, kind: { msg } });
const ml = (name: string, msg: string): Field => ({ name, kind: { msg }, repeated: true });
const localRef: Field = { name: 'localObjectReference', kind: { msg: 'LocalRef' }, inline: true };

/** The generated messages, by name (one table, field numbers from k8s.io/api and apimachinery). */
const MESSAGES: Readonly<Record<string, Schema>> = {
  Unknown: {
    1: m('typeMeta', 'TypeMeta'),
    2: { name: 'raw', kind: 'bytes' },
    3: s('contentEncoding'),
    4: s('contentType'),
  },
  TypeMeta: { 1: s('apiVersion'), 2: s('kind') },
  ObjectMeta: {
    1: s('name'),
    2: s('generateName'),
    3: s('namespace'),
    4: s('selfLink'),
    5: s('uid'),
    6: s('resourceVersion'),
    7: i('generation'),
    8: m('creationTimestamp', 'Time'),
    9: m('deletionTimestamp', 'Time'),
    10: i('deletionGracePeriodSeconds'),
    11: { name: 'labels', kind: { map: 'string' } },
    12: { name: 'annotations', kind: { map: 'string' } },
    13: ml('ownerReferences', 'OwnerReference'),
    14: sl('finalizers'),
  },
  OwnerReference: {
    1: s('kind'),
    3: s('name'),
    4: s('uid'),
    5: s('apiVersion'),
    6: b('controller'),
    7: b('blockOwnerDeletion'),
  },
  Time: { 1: i('seconds'), 2: i('nanos') },
  Quantity: { 1: s('string') },
  LocalRef: { 1: s('name') },
  ObjectReference: {
    1: s('kind'),
    2: s('namespace'),
    3: s('name'),
    4: s('uid'),
    5: s('apiVersion'),
    6: s('resourceVersion'),
    7: s('fieldPath'),
  },
  Namespace: {
    1: m('metadata', 'ObjectMeta'),
    2: m('spec', 'NamespaceSpec'),
    3: m('status', 'NamespaceStatus'),
  },
  NamespaceSpec: { 1: sl('finalizers') },
  NamespaceStatus: { 1: s('phase') },
  ConfigMap: {
    1: m('metadata', 'ObjectMeta'),
    2: { name: 'data', kind: { map: 'string' } },
    3: { name: 'binaryData', kind: { map: 'bytes' } },
    4: b('immutable'),
  },
  Secret: {
    1: m('metadata', 'ObjectMeta'),
    2: { name: 'data', kind: { map: 'bytes' } },
    3: s('type'),
    4: { name: 'stringData', kind: { map: 'string' } },
    5: b('immutable'),
  },
  ServiceAccount: {
    1: m('metadata', 'ObjectMeta'),
    2: ml('secrets', 'ObjectReference'),
    3: ml('imagePullSecrets', 'LocalRef'),
    4: b('automountServiceAccountToken'),
  },
  TokenRequest: {
    1: m('metadata', 'ObjectMeta'),
    2: m('spec', 'TokenRequestSpec'),
    3: m('status', 'TokenRequestStatus'),
  },
  TokenRequestSpec: {
    1: sl('audiences'),
    3: m('boundObjectRef', 'BoundObjectReference'),
    4: i('expirationSeconds'),
  },
  TokenRequestStatus: { 1: s('token'), 2: m('expirationTimestamp', 'Time') },
  BoundObjectReference: { 1: s('kind'), 2: s('apiVersion'), 3: s('name'), 4: s('uid') },
  SelfSubjectAccessReview: {
    1: m('metadata', 'ObjectMeta'),
    2: m('spec', 'SelfSubjectAccessReviewSpec'),
    3: m('status', 'SubjectAccessReviewStatus'),
  },
  SelfSubjectAccessReviewSpec: {
    1: m('resourceAttributes', 'ResourceAttributes'),
    2: m('nonResourceAttributes', 'NonResourceAttributes'),
  },
  ResourceAttributes: {
    1: s('namespace'),
    2: s('verb'),
    3: s('group'),
    4: s('version'),
    5: s('resource'),
    6: s('subresource'),
    7: s('name'),
  },
  NonResourceAttributes: { 1: s('path'), 2: s('verb') },
  SubjectAccessReviewStatus: {
    1: b('allowed'),
    2: s('reason'),
    3: s('evaluationError'),
    4: b('denied'),
  },
  Role: { 1: m('metadata', 'ObjectMeta'), 2: ml('rules', 'PolicyRule') },
  ClusterRole: {
    1: m('metadata', 'ObjectMeta'),
    2: ml('rules', 'PolicyRule'),
    3: m('aggregationRule', 'AggregationRule'),
  },
  PolicyRule: {
    1: sl('verbs'),
    2: sl('apiGroups'),
    3: sl('resources'),
    4: sl('resourceNames'),
    5: sl('nonResourceURLs'),
  },
  AggregationRule: { 1: ml('clusterRoleSelectors', 'LabelSelector') },
  LabelSelector: {
    1: { name: 'matchLabels', kind: { map: 'string' } },
    2: ml('matchExpressions', 'LabelSelectorRequirement'),
  },
  LabelSelectorRequirement: { 1: s('key'), 2: s('operator'), 3: sl('values') },
  RoleBinding: {
    1: m('metadata', 'ObjectMeta'),
    2: ml('subjects', 'Subject'),
    3: m('roleRef', 'RoleRef'),
  },
  ClusterRoleBinding: {
    1: m('metadata', 'ObjectMeta'),
    2: ml('subjects', 'Subject'),
    3: m('roleRef', 'RoleRef'),
  },
  Subject: { 1: s('kind'), 2: s('apiGroup'), 3: s('name'), 4: s('namespace') },
  RoleRef: { 1: s('apiGroup'), 2: s('kind'), 3: s('name') },
  Pod: { 1: m('metadata', 'ObjectMeta'), 2: m('spec', 'PodSpec'), 3: m('status', 'PodStatus') },
  PodStatus: { 1: s('phase'), 3: s('message'), 4: s('reason') },
  PodSpec: {
    2: ml('containers', 'Container'),
    3: s('restartPolicy'),
    4: i('terminationGracePeriodSeconds'),
    5: i('activeDeadlineSeconds'),
    6: s('dnsPolicy'),
    7: { name: 'nodeSelector', kind: { map: 'string' } },
    8: s('serviceAccountName'),
    9: s('serviceAccount'),
    10: s('nodeName'),
    15: ml('imagePullSecrets', 'LocalRef'),
    16: s('hostname'),
    19: s('schedulerName'),
    20: ml('initContainers', 'Container'),
    21: b('automountServiceAccountToken'),
    24: s('priorityClassName'),
    30: b('enableServiceLinks'),
  },
  Container: {
    1: s('name'),
    2: s('image'),
    3: sl('command'),
    4: sl('args'),
    5: s('workingDir'),
    6: ml('ports', 'ContainerPort'),
    7: ml('env', 'EnvVar'),
    8: m('resources', 'ResourceRequirements'),
    9: ml('volumeMounts', 'VolumeMount'),
    13: s('terminationMessagePath'),
    14: s('imagePullPolicy'),
    16: b('stdin'),
    17: b('stdinOnce'),
    18: b('tty'),
    19: ml('envFrom', 'EnvFromSource'),
    20: s('terminationMessagePolicy'),
  },
  ContainerPort: {
    1: s('name'),
    2: i('hostPort'),
    3: i('containerPort'),
    4: s('protocol'),
    5: s('hostIP'),
  },
  EnvVar: { 1: s('name'), 2: s('value'), 3: m('valueFrom', 'EnvVarSource') },
  EnvVarSource: {
    1: m('fieldRef', 'ObjectFieldSelector'),
    3: m('configMapKeyRef', 'KeySelector'),
    4: m('secretKeyRef', 'KeySelector'),
  },
  ObjectFieldSelector: { 1: s('apiVersion'), 2: s('fieldPath') },
  KeySelector: { 1: localRef, 2: s('key'), 3: b('optional') },
  EnvFromSource: {
    1: s('prefix'),
    2: m('configMapRef', 'EnvSource'),
    3: m('secretRef', 'EnvSource'),
  },
  EnvSource: { 1: localRef, 2: b('optional') },
  ResourceRequirements: {
    1: { name: 'limits', kind: { map: { msg: 'Quantity' } } },
    2: { name: 'requests', kind: { map: { msg: 'Quantity' } } },
  },
  VolumeMount: { 1: s('name'), 2: b('readOnly'), 3: s('mountPath'), 4: s('subPath') },
};

/** The kind each top-level message decodes (TypeMeta.kind → message name). */
const TOP_LEVEL = new Set([
  'SelfSubjectAccessReview',
  'Role',
  'ClusterRole',
  'RoleBinding',
  'ClusterRoleBinding',
  'Namespace',
  'ConfigMap',
  'Secret',
  'ServiceAccount',
  'TokenRequest',
  'Pod',
]);

/** metav1.Time of Go's zero time (`0001-01-01T00:00:00Z`), which JSON writes as null. */
const ZERO_TIME_SECONDS = -62135596800;

function unsupported(message: string): ApiStatusError {
  return new ApiStatusError(415, StatusReasons.UnsupportedMediaType, message);
}

/** A cursor over protobuf wire format. */
class Reader {
  #pos = 0;
  constructor(readonly buf: Buffer) {}

  get done(): boolean {
    return this.#pos >= this.buf.length;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.#pos >= this.buf.length) throw unsupported('truncated protobuf varint');
      const byte = this.buf[this.#pos++] ?? 0;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw unsupported('protobuf varint longer than 10 bytes');
    }
  }

  bytes(): Buffer {
    const len = Number(this.varint());
    if (this.#pos + len > this.buf.length) throw unsupported('truncated protobuf field');
    const out = this.buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return out;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.#pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.#pos += 4;
    else throw unsupported(`protobuf wire type ${wire} is not supported`);
  }
}

type Value = string | number | boolean | null | Value[] | { [k: string]: Value };

function scalar(kind: Scalar, wire: number, r: Reader): Value {
  if (kind === 'int' || kind === 'bool') {
    if (wire !== 0) throw unsupported(`expected a varint, got wire type ${wire}`);
    const v = BigInt.asIntN(64, r.varint());
    return kind === 'bool' ? v !== 0n : Number(v);
  }
  if (wire !== 2) throw unsupported(`expected a length-delimited field, got wire type ${wire}`);
  const bytes = r.bytes();
  return kind === 'string' ? bytes.toString('utf8') : bytes.toString('base64');
}

function valueOf(kind: Kind, wire: number, r: Reader, path: string): Value {
  if (typeof kind === 'string') return scalar(kind, wire, r);
  if ('msg' in kind) {
    if (wire !== 2) throw unsupported(`${path}: expected a message, got wire type ${wire}`);
    return decodeMessage(kind.msg, r.bytes(), path);
  }
  throw unsupported(`${path}: a map inside a map`);
}

/** One map entry message: key = 1, value = 2. */
function mapEntry(
  valueKind: Scalar | { readonly msg: string },
  bytes: Buffer,
  path: string,
): [string, Value] {
  const r = new Reader(bytes);
  let key = '';
  let value: Value = typeof valueKind === 'string' ? (valueKind === 'int' ? 0 : '') : null;
  while (!r.done) {
    const tag = Number(r.varint());
    const [field, wire] = [tag >>> 3, tag & 7];
    if (field === 1) key = r.bytes().toString('utf8');
    else if (field === 2) value = valueOf(valueKind, wire, r, `${path}[${key}]`);
    else r.skip(wire);
  }
  if (value === null && typeof valueKind !== 'string')
    value = decodeMessage(valueKind.msg, Buffer.alloc(0), path);
  return [key, value];
}

/** Decodes one message into its JSON form. */
function decodeMessage(name: string, bytes: Buffer, path: string): Value {
  const schema = MESSAGES[name];
  if (schema === undefined) throw unsupported(`${path}: no protobuf schema for ${name}`);
  const out: Record<string, Value> = {};
  const r = new Reader(bytes);
  while (!r.done) {
    const tag = Number(r.varint());
    const [num, wire] = [tag >>> 3, tag & 7];
    const field = schema[num];
    if (field === undefined) {
      throw unsupported(
        `the sandbox does not decode field ${num} of ${name} (at ${path}) from protobuf; send JSON (--kubeconfig content type application/json)`,
      );
    }
    const where = `${path}.${field.name}`;
    const kind = field.kind;
    if (typeof kind !== 'string' && 'map' in kind) {
      if (wire !== 2) throw unsupported(`${where}: expected a map entry`);
      const [k, v] = mapEntry(kind.map, r.bytes(), where);
      const map = (out[field.name] ??= {}) as Record<string, Value>;
      map[k] = v;
      continue;
    }
    // Packed repeated scalars are not used by any string/message field we know.
    const value = valueOf(kind, wire, r, where);
    if (
      field.inline === true &&
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value)
    ) {
      Object.assign(out, value);
    } else if (field.repeated === true) {
      ((out[field.name] ??= []) as Value[]).push(value);
    } else if (value !== null && !isZero(value)) out[field.name] = value;
  }
  return special(name, out);
}

/**
 * Go's protobuf writes every scalar, JSON omits the empty ones (`omitempty`): a zero scalar is
 * left out so that both encodings give the same object.
 */
function isZero(value: Value): boolean {
  return value === '' || value === 0 || value === false;
}

/** Messages whose JSON is not an object: Time (empty when zero), Quantity. */
function special(name: string, out: Record<string, Value>): Value {
  if (name === 'Quantity') return typeof out['string'] === 'string' ? out['string'] : '0';
  if (name === 'Time') {
    if (out['seconds'] === undefined && out['nanos'] === undefined) return null;
    const seconds = typeof out['seconds'] === 'number' ? out['seconds'] : 0;
    if (seconds === ZERO_TIME_SECONDS) return null;
    return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  return out;
}

/**
 * Decodes a `k8s\0` + `runtime.Unknown` body into the object's JSON, with `apiVersion` and
 * `kind` from the envelope. A kind without a schema here is 415.
 */
export function decodeKubeProtobuf(body: Buffer): Record<string, unknown> {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC))
    throw unsupported('the protobuf body does not start with the k8s\\0 magic');
  const envelope = decodeMessage('Unknown', body.subarray(MAGIC.length), 'Unknown') as Record<
    string,
    Value
  >;
  const typeMeta = (envelope['typeMeta'] ?? {}) as Record<string, Value>;
  const kind = typeof typeMeta['kind'] === 'string' ? typeMeta['kind'] : '';
  const apiVersion = typeof typeMeta['apiVersion'] === 'string' ? typeMeta['apiVersion'] : '';
  const encoding = envelope['contentEncoding'];
  if (typeof encoding === 'string' && encoding !== '')
    throw unsupported(`protobuf content encoding ${encoding} is not supported`);
  if (!TOP_LEVEL.has(kind)) {
    throw unsupported(
      `the sandbox decodes protobuf only for ${[...TOP_LEVEL].join(', ')}, not ${kind === '' ? 'an untyped body' : kind}; send JSON`,
    );
  }
  const raw =
    typeof envelope['raw'] === 'string' ? Buffer.from(envelope['raw'], 'base64') : Buffer.alloc(0);
  const obj = decodeMessage(kind, raw, kind) as Record<string, unknown>;
  return { apiVersion, kind, ...obj };
}
