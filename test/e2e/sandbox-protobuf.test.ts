// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox's reader of client-go's protobuf bodies, table-tested with messages built here by
 * a tiny encoder (field numbers from k8s.io/api's generated.proto), and its refusals.
 */
import { describe, expect, it } from 'vitest';
import { ApiStatusError } from '../sandbox/api-errors.js';
import { decodeKubeProtobuf } from '../sandbox/protobuf.js';

function varint(n: bigint): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Buffer.from(out);
}
const tag = (num: number, wire: number): Buffer => varint(BigInt((num << 3) | wire));
const bytes = (num: number, payload: Buffer): Buffer =>
  Buffer.concat([tag(num, 2), varint(BigInt(payload.length)), payload]);
const str = (num: number, s: string): Buffer => bytes(num, Buffer.from(s));
const msg = (num: number, ...parts: Buffer[]): Buffer => bytes(num, Buffer.concat(parts));
const int = (num: number, n: number): Buffer => Buffer.concat([tag(num, 0), varint(BigInt(n))]);
const entry = (num: number, key: string, value: Buffer): Buffer =>
  msg(num, str(1, key), bytes(2, value));

/** `k8s\0` + Unknown{typeMeta{apiVersion, kind}, raw}. */
function envelope(apiVersion: string, kind: string, raw: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from('k8s\0', 'latin1'),
    msg(1, str(1, apiVersion), str(2, kind)),
    bytes(2, raw),
  ]);
}

const meta = (...parts: Buffer[]): Buffer => msg(1, ...parts);
/** Go writes every scalar, also the empty ones, and an empty Time for a zero timestamp. */
const goMeta = (name: string, ns = ''): Buffer =>
  meta(str(1, name), str(2, ''), str(3, ns), str(6, ''), int(7, 0), msg(8));

const CASES: readonly {
  readonly name: string;
  readonly body: Buffer;
  readonly want: Record<string, unknown>;
}[] = [
  {
    name: 'Namespace, Go zero values omitted as JSON would',
    body: envelope('v1', 'Namespace', Buffer.concat([goMeta('foo'), msg(2), msg(3, str(1, ''))])),
    want: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'foo' }, spec: {}, status: {} },
  },
  {
    name: 'ConfigMap with data and binaryData maps',
    body: envelope(
      'v1',
      'ConfigMap',
      Buffer.concat([
        goMeta('cm', 'ns1'),
        entry(2, 'a', Buffer.from('b')),
        entry(2, 'empty', Buffer.alloc(0)),
        entry(3, 'bin', Buffer.from([0, 255])),
      ]),
    ),
    want: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'cm', namespace: 'ns1' },
      data: { a: 'b', empty: '' },
      binaryData: { bin: 'AP8=' },
    },
  },
  {
    name: 'Secret data as base64, type, labels and a real timestamp',
    body: envelope(
      'v1',
      'Secret',
      Buffer.concat([
        meta(str(1, 's'), entry(11, 'app', Buffer.from('x')), msg(8, int(1, 1_700_000_000))),
        entry(2, 'k', Buffer.from('v')),
        str(3, 'Opaque'),
      ]),
    ),
    want: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's', labels: { app: 'x' }, creationTimestamp: '2023-11-14T22:13:20Z' },
      data: { k: 'dg==' },
      type: 'Opaque',
    },
  },
  {
    name: 'TokenRequest with audiences, an int64 and a bound object',
    body: envelope(
      'authentication.k8s.io/v1',
      'TokenRequest',
      Buffer.concat([
        meta(),
        msg(2, str(1, 'a1'), str(1, 'a2'), int(4, 7200), msg(3, str(1, 'Pod'), str(3, 'p'))),
      ]),
    ),
    want: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      metadata: {},
      spec: {
        audiences: ['a1', 'a2'],
        expirationSeconds: 7200,
        boundObjectRef: { kind: 'Pod', name: 'p' },
      },
    },
  },
  {
    name: 'Pod as kubectl run sends it (embedded LocalObjectReference flattened, quantities)',
    body: envelope(
      'v1',
      'Pod',
      Buffer.concat([
        goMeta('p1', 'default'),
        msg(
          2,
          msg(
            2,
            str(1, 'c'),
            str(2, 'busybox'),
            str(4, 'sh'),
            str(4, '-c'),
            msg(6, int(3, 80), str(4, 'TCP')),
            msg(7, str(1, 'A'), str(2, 'B')),
            msg(7, str(1, 'S'), msg(3, msg(4, msg(1, str(1, 'sec')), str(2, 'key')))),
            msg(8, entry(1, 'memory', str(1, '64Mi'))),
            int(16, 0),
          ),
          str(3, 'Never'),
          str(6, 'ClusterFirst'),
        ),
        msg(3),
      ]),
    ),
    want: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p1', namespace: 'default' },
      spec: {
        containers: [
          {
            name: 'c',
            image: 'busybox',
            args: ['sh', '-c'],
            ports: [{ containerPort: 80, protocol: 'TCP' }],
            env: [
              { name: 'A', value: 'B' },
              { name: 'S', valueFrom: { secretKeyRef: { name: 'sec', key: 'key' } } },
            ],
            resources: { limits: { memory: '64Mi' } },
          },
        ],
        restartPolicy: 'Never',
        dnsPolicy: 'ClusterFirst',
      },
      status: {},
    },
  },
];

describe('protobuf bodies', () => {
  it.each(CASES)('decodes $name', ({ body, want }) => {
    expect(decodeKubeProtobuf(body)).toEqual(want);
  });

  const REFUSED: readonly { readonly name: string; readonly body: Buffer; readonly msg: RegExp }[] =
    [
      { name: 'no magic', body: Buffer.from('{"kind":"Pod"}'), msg: /k8s\\0 magic/ },
      {
        name: 'a kind without a schema',
        body: envelope('apps/v1', 'Deployment', goMeta('d')),
        msg: /not Deployment; send JSON/,
      },
      {
        name: 'an unknown field (never dropped silently)',
        body: envelope('v1', 'ConfigMap', Buffer.concat([goMeta('cm'), str(9, 'x')])),
        msg: /field 9 of ConfigMap/,
      },
      {
        name: 'a truncated field',
        body: Buffer.concat([Buffer.from('k8s\0', 'latin1'), tag(2, 2), varint(50n)]),
        msg: /truncated/,
      },
    ];

  it.each(REFUSED)('refuses $name with 415', ({ body, msg: message }) => {
    let caught: unknown;
    try {
      decodeKubeProtobuf(body);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ApiStatusError);
    expect((caught as ApiStatusError).statusCode).toBe(415);
    expect((caught as ApiStatusError).message).toMatch(message);
  });
});
