// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { DATA_PATH_NODE_OPTIONS } from '../../common/node-options.js';
import { buildTransferPod } from './transfer-pod.js';

function claim(volumeMode: 'Filesystem' | 'Block'): V1PersistentVolumeClaim {
  return {
    metadata: { name: 'disk', namespace: 'ns', uid: 'pvc-uid' },
    spec: {
      accessModes: ['ReadWriteOnce'],
      volumeMode,
      resources: { requests: { storage: '1Gi' } },
    },
  };
}

describe('buildTransferPod', () => {
  it.each([
    {
      volumeMode: 'Filesystem' as const,
      mounts: ['cdi-data-vol:/data', 'cdi-tmp:/tmp', 'extra:/x'],
    },
    { volumeMode: 'Block' as const, mounts: ['cdi-tmp:/tmp', 'extra:/x'] },
  ])(
    'runs a $volumeMode claim as uid 107 with a read-only root and /tmp as an emptyDir',
    ({ volumeMode, mounts }) => {
      const pod = buildTransferPod({
        pvc: claim(volumeMode),
        name: 'importer-disk',
        labels: {},
        container: { name: 'importer', image: 'cdi:1' },
        volumes: [{ name: 'extra', emptyDir: {} }],
        mounts: [{ name: 'extra', mountPath: '/x' }],
      });
      const c = pod.spec?.containers[0];
      expect(c?.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        runAsNonRoot: true,
        runAsUser: 107,
        readOnlyRootFilesystem: true,
      });
      expect(c?.volumeMounts?.map((m) => `${m.name}:${m.mountPath}`)).toEqual(mounts);
      expect(pod.spec?.volumes?.find((v) => v.name === 'cdi-tmp')).toEqual({
        name: 'cdi-tmp',
        emptyDir: {},
      });
      expect(pod.spec?.securityContext).toMatchObject({ fsGroup: 107, runAsNonRoot: true });
    },
  );

  it("keeps the builder's env and adds the data-path node options", () => {
    const pod = buildTransferPod({
      pvc: claim('Filesystem'),
      name: 'upload-disk',
      labels: {},
      container: { name: 'server', image: 'cdi:1', env: [{ name: 'A', value: '1' }] },
      volumes: [],
      mounts: [],
    });
    expect(pod.spec?.containers[0]?.env).toEqual([
      { name: 'A', value: '1' },
      { name: 'NODE_OPTIONS', value: DATA_PATH_NODE_OPTIONS },
    ]);
  });
});
