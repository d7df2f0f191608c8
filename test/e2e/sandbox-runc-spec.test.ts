// SPDX-License-Identifier: Apache-2.0
/**
 * How the runc pod runtime reads a pod spec, as a kubelet would: user and groups from the pod's
 * and container's securityContext over the image's User, runAsNonRoot refused for root, argv from
 * command/args over Entrypoint/Cmd, limits as bytes and thousandths of a CPU, mounts, and
 * capabilities (containerd's default set, drop, add), read back from CapEff inside runc.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capabilitiesOf, capabilityMask } from '../containers/capabilities.js';
import { parseContainerImage, pullPolicyOf } from '../containers/image-store.js';
import { runContainer } from '../containers/runc.js';
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

const execFileAsync = promisify(execFile);

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
    [
      { CDI_E2E_POD_RUNTIME: 'runc', CDI_E2E_IMAGE_SOURCE: 'registry' },
      { podRuntime: 'runc', imageSource: 'registry' },
    ],
  ])('%j', (env, want) => {
    expect(podRuntimeFromEnv(env)).toEqual(want);
  });

  it('refuses an unknown image source', () => {
    expect(() => podRuntimeFromEnv({ CDI_E2E_IMAGE_SOURCE: 'docker' })).toThrow(
      'CDI_E2E_IMAGE_SOURCE=docker: expected archive or registry',
    );
  });

  it('refuses an unknown runtime', () => {
    expect(() => podRuntimeFromEnv({ CDI_E2E_POD_RUNTIME: 'docker' })).toThrow(
      'CDI_E2E_POD_RUNTIME=docker: expected process or runc',
    );
  });
});

describe('capabilities', () => {
  const DEFAULT_MASK = '00000000a80425fb';
  it.each([
    { name: 'the default set', sc: {}, want: DEFAULT_MASK },
    { name: 'drop ALL (CDI pods)', sc: { capabilities: { drop: ['ALL'] } }, want: '0'.repeat(16) },
    {
      name: 'drop ALL, add NET_BIND_SERVICE',
      sc: { capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } },
      want: '0000000000000400',
    },
    {
      name: 'add SYS_ADMIN, drop CAP_MKNOD',
      sc: { capabilities: { add: ['SYS_ADMIN'], drop: ['CAP_MKNOD'] } },
      want: '00000000a02425fb',
    },
    { name: 'add ALL', sc: { capabilities: { add: ['ALL'] } }, want: '000001ffffffffff' },
  ])('$name', (c) => {
    expect(capabilityMask(capabilitiesOf(c.sc))).toBe(c.want);
  });

  it('refuses an unknown capability', () => {
    expect(() => capabilitiesOf({ capabilities: { add: ['FLY'] } })).toThrow(
      'unknown capability "FLY"',
    );
  });

  describe('inside a runc container (CapEff of /proc/self/status)', () => {
    let dir: string;
    let rootfs: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'cdi-caps-'));
      rootfs = join(dir, 'rootfs');
      await mkdir(join(rootfs, 'proc'), { recursive: true });
      await mkdir(join(rootfs, 'dev'), { recursive: true });
      // A static program that prints its status: the root filesystem needs nothing else.
      const source = join(dir, 'status.c');
      await writeFile(
        source,
        `#include <stdio.h>
int main(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[512];
  if (f == NULL) return 2;
  while (fgets(line, sizeof line, f) != NULL) fputs(line, stdout);
  return 0;
}
`,
      );
      await execFileAsync('cc', ['-static', '-O1', '-o', join(rootfs, 'status'), source]);
    }, 120_000);
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    async function capEff(uid: number, sc: Record<string, unknown>): Promise<string> {
      const security = securityOf(pod({ runAsUser: uid }), { name: 'c', securityContext: sc }, {});
      const result = await runContainer({
        rootfs,
        args: ['/status'],
        uid: security.uid,
        gid: security.gid,
        capabilities: security.capabilities,
        noNewPrivileges: security.noNewPrivileges,
        timeoutMs: 60_000,
      });
      expect(result.exitCode, result.stderr).toBe(0);
      return /^CapEff:\s+([0-9a-f]+)$/m.exec(result.stdout)?.[1] ?? `no CapEff in ${result.stdout}`;
    }

    it.each([
      { name: 'root, the default set', uid: 0, sc: {}, want: DEFAULT_MASK },
      {
        name: 'root, drop ALL add NET_BIND_SERVICE',
        uid: 0,
        sc: { capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } },
        want: '0000000000000400',
      },
      {
        name: "user 107 as CDI's pods (drop ALL, no escalation)",
        uid: 107,
        sc: { capabilities: { drop: ['ALL'] }, allowPrivilegeEscalation: false },
        want: '0'.repeat(16),
      },
      {
        name: 'user 107 loses an added capability at exec, as under containerd',
        uid: 107,
        sc: { capabilities: { add: ['NET_ADMIN'] } },
        want: '0'.repeat(16),
      },
    ])('$name', async (c) => {
      expect(await capEff(c.uid, c.sc)).toBe(c.want);
    });
  });
});

describe('image references and pull policies', () => {
  it.each([
    [{ image: 'cdi-ts/cdi' }, 'Always'],
    [{ image: 'cdi-ts/cdi:latest' }, 'Always'],
    [{ image: '127.0.0.1:5000/disk:v1' }, 'IfNotPresent'],
    [{ image: '127.0.0.1:5000/disk' }, 'Always'],
    [{ image: `disk@sha256:${'a'.repeat(64)}` }, 'IfNotPresent'],
    [{ image: 'cdi-ts/cdi:latest', imagePullPolicy: 'Never' }, 'Never'],
    [{ image: 'x:1', imagePullPolicy: 'Sometimes' }, 'IfNotPresent'],
  ])('%j pulls %s', (container, want) => {
    expect(pullPolicyOf(container)).toBe(want);
  });

  it.each([
    ['cdi-ts/cdi:latest', 'docker.io', 'cdi-ts/cdi', 'latest'],
    ['fedora', 'docker.io', 'library/fedora', 'latest'],
    ['127.0.0.1:5000/disk:v1', '127.0.0.1:5000', 'disk', 'v1'],
  ])('%s is %s/%s:%s', (name, registry, repository, tag) => {
    expect(parseContainerImage(name)).toMatchObject({ registry, repository, tag });
  });

  it.each(['', 'UPPER/case', 'a:b:c:d'])('refuses %j as InvalidImageName', (name) => {
    expect(() => parseContainerImage(name)).toThrow(
      `Failed to apply default image tag "${name}": couldn't parse image name "${name}": invalid reference format`,
    );
  });
});
