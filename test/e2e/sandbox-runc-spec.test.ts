// SPDX-License-Identifier: Apache-2.0
/**
 * How the runc pod runtime reads a pod spec, as a kubelet would: user and groups from the pod's
 * and container's securityContext over the image's User, runAsNonRoot refused for root, argv from
 * command/args over Entrypoint/Cmd, limits as bytes and thousandths of a CPU, and mounts.
 */
import { describe, expect, it } from 'vitest';
import type { KObject } from '../sandbox/object.js';
import { NotReadyError } from '../sandbox/pod-env.js';
import {
  argvOf,
  limitsOf,
  mountsOf,
  parseCpuMillis,
  securityOf,
} from '../sandbox/pod-runtime-runc.js';
import { podRuntimeFromEnv } from '../sandbox/testing.js';

function pod(securityContext: Record<string, unknown> | undefined): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'ns', uid: 'u1' },
    spec: securityContext === undefined ? {} : { securityContext },
  };
}

describe('securityOf', () => {
  const cases: {
    name: string;
    pod?: Record<string, unknown>;
    container?: Record<string, unknown>;
    user?: string;
    want: { uid: number; gid: number; additionalGids: number[]; readOnlyRootFilesystem: boolean };
  }[] = [
    {
      name: "the image's numeric User when nothing is set",
      user: '107',
      want: { uid: 107, gid: 0, additionalGids: [], readOnlyRootFilesystem: false },
    },
    {
      name: "the image's user:group",
      user: '1000:2000',
      want: { uid: 1000, gid: 2000, additionalGids: [], readOnlyRootFilesystem: false },
    },
    {
      name: "the pod's over the image's, fsGroup and supplementalGroups as groups",
      pod: { runAsUser: 5, runAsGroup: 6, fsGroup: 7, supplementalGroups: [8, 7] },
      user: '107',
      want: { uid: 5, gid: 6, additionalGids: [7, 8], readOnlyRootFilesystem: false },
    },
    {
      name: "the container's over the pod's (CDI's transfer pod)",
      pod: { fsGroup: 107, runAsNonRoot: true },
      container: { runAsUser: 107, runAsNonRoot: true, readOnlyRootFilesystem: true },
      user: '0',
      want: { uid: 107, gid: 0, additionalGids: [107], readOnlyRootFilesystem: true },
    },
  ];
  it.each(cases)('$name', (c) => {
    const s = securityOf(
      pod(c.pod),
      { name: 'c', ...(c.container === undefined ? {} : { securityContext: c.container }) },
      c.user === undefined ? {} : { User: c.user },
    );
    expect({
      uid: s.uid,
      gid: s.gid,
      additionalGids: s.additionalGids,
      readOnlyRootFilesystem: s.readOnlyRootFilesystem,
    }).toEqual(c.want);
  });

  it.each([
    { name: 'image root', pod: { runAsNonRoot: true }, container: {}, user: '0' },
    { name: 'no user at all', pod: {}, container: { runAsNonRoot: true }, user: undefined },
    {
      name: 'explicit root',
      pod: { runAsNonRoot: true },
      container: { runAsUser: 0 },
      user: '107',
    },
  ])('refuses runAsNonRoot with user 0: $name', (c) => {
    const run = (): unknown =>
      securityOf(
        pod(c.pod),
        { name: 'c', securityContext: c.container },
        c.user === undefined ? {} : { User: c.user },
      );
    expect(run).toThrow(NotReadyError);
    expect(run).toThrow(
      'container has runAsNonRoot and image will run as root (pod: "p_ns(u1)", container: c)',
    );
  });
});

describe('argvOf', () => {
  const image = { Entrypoint: ['cdi'], Cmd: ['--help'] };
  it.each([
    { name: 'the image alone', container: {}, want: ['cdi', '--help'] },
    { name: 'args replace Cmd', container: { args: ['info', 'x'] }, want: ['cdi', 'info', 'x'] },
    {
      name: 'command drops Cmd',
      container: { command: ['cdi', 'importer'] },
      want: ['cdi', 'importer'],
    },
    {
      name: 'command and args',
      container: { command: ['sh', '-c'], args: ['exit 3'] },
      want: ['sh', '-c', 'exit 3'],
    },
  ])('$name', (c) => {
    expect(argvOf(c.container, image)).toEqual(c.want);
  });
});

describe('limits', () => {
  it.each([
    ['500m', 500],
    ['2', 2000],
    ['0.25', 250],
    ['750m', 750],
  ])('cpu %s is %i thousandths', (text, want) => {
    expect(parseCpuMillis(text)).toBe(want);
  });

  it('refuses a cpu quantity it cannot read', () => {
    expect(() => parseCpuMillis('lots')).toThrow('invalid cpu quantity "lots"');
  });

  it.each([
    [{ resources: { limits: { memory: '256Mi', cpu: '750m' } } }, 256 * 1024 * 1024, 750],
    [{ resources: { limits: { memory: '600M' } } }, 600_000_000, undefined],
    [{ resources: { requests: { memory: '1Gi' } } }, undefined, undefined],
    [{}, undefined, undefined],
  ])('%j', (container, memoryBytes, cpuMillis) => {
    expect(limitsOf(container)).toEqual({ memoryBytes, cpuMillis });
  });
});

describe('mountsOf', () => {
  it('binds volumeMounts (subPath, readOnly) and volumeDevices, skipping unknown volumes', () => {
    const volumes = new Map([
      ['data', { path: '/host/pv', block: false }],
      ['tls', { path: '/host/tls', block: false }],
      ['dev', { path: '/host/block.img', block: true }],
    ]);
    expect(
      mountsOf(
        {
          volumeMounts: [
            { name: 'data', mountPath: '/data' },
            { name: 'tls', mountPath: '/etc/tls', readOnly: true, subPath: 'inner' },
            { name: 'missing', mountPath: '/nowhere' },
          ],
          volumeDevices: [{ name: 'dev', devicePath: '/dev/cdi-block-volume' }],
        },
        volumes,
      ),
    ).toEqual([
      { source: '/host/pv', destination: '/data', readonly: false },
      { source: '/host/tls/inner', destination: '/etc/tls', readonly: true },
      { source: '/host/block.img', destination: '/dev/cdi-block-volume' },
    ]);
  });
});

describe('podRuntimeFromEnv', () => {
  it.each([
    [{}, {}],
    [{ CDI_E2E_POD_RUNTIME: 'runc' }, { podRuntime: 'runc' }],
    [
      { CDI_E2E_POD_RUNTIME: 'process', CDI_E2E_IMAGE: '/i.tar' },
      { podRuntime: 'process', image: '/i.tar' },
    ],
  ])('%j', (env, want) => {
    expect(podRuntimeFromEnv(env)).toEqual(want);
  });

  it('refuses an unknown runtime', () => {
    expect(() => podRuntimeFromEnv({ CDI_E2E_POD_RUNTIME: 'docker' })).toThrow(
      'CDI_E2E_POD_RUNTIME=docker: expected process or runc',
    );
  });
});
