// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations } from '../../common/contract.js';
import { effectiveConfig, parseControllerSettings } from '../config.js';
import { buildUploadPod, buildUploadSecret, buildUploadService } from './upload-pod.js';

const settings = parseControllerSettings({ IMPORTER_IMAGE: 'cdi:1' }, 'test');
const config = effectiveConfig({ filesystemOverhead: { global: '0.1' } }, [
  { name: 'standard', isDefault: true, volumeBindingMode: 'Immediate' },
]);

function claim(volumeMode: 'Filesystem' | 'Block', extra: Record<string, string> = {}) {
  const pvc: V1PersistentVolumeClaim = {
    metadata: {
      name: 'my.disk',
      namespace: 'ns',
      uid: 'pvc-uid',
      labels: { team: 'a' },
      annotations: { [Annotations.UploadTarget]: '', ...extra },
    },
    spec: {
      volumeMode,
      storageClassName: 'standard',
      resources: { requests: { storage: '2Gi' } },
    },
  };
  return pvc;
}

function envOf(pvc: V1PersistentVolumeClaim): Record<string, string> {
  const pod = buildUploadPod({ pvc, config, settings });
  return Object.fromEntries(
    (pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? '']),
  );
}

describe('buildUploadPod', () => {
  it.each([
    {
      what: 'filesystem claim',
      pvc: claim('Filesystem'),
      want: { FILESYSTEM_OVERHEAD: '0.1', DESTINATION: '/data/disk.img', PREALLOCATION: 'false' },
    },
    {
      what: 'block claim (no overhead)',
      pvc: claim('Block'),
      want: { FILESYSTEM_OVERHEAD: '0', DESTINATION: '/dev/cdi-block-volume' },
    },
    {
      what: 'preallocation requested',
      pvc: claim('Filesystem', { [Annotations.PreallocationRequested]: 'true' }),
      want: { PREALLOCATION: 'true' },
    },
  ])("sets CDI's environment: $what", ({ pvc, want }) => {
    expect(envOf(pvc)).toMatchObject({
      TLS_KEY_FILE: '/etc/tls/tls.key',
      TLS_CERT_FILE: '/etc/tls/tls.crt',
      CLIENT_CERT_FILE: '/etc/tls/ca.crt',
      CLIENT_NAME: 'client.upload-server.cdi.kubevirt.io',
      UPLOAD_IMAGE_SIZE: '2Gi',
      ...want,
    });
  });

  it('runs `cdi uploadserver` with the claim, its Secret and a readiness probe', () => {
    const pvc = claim('Filesystem', { [Annotations.PriorityClassName]: 'high' });
    const pod = buildUploadPod({ pvc, config, settings });
    const c = pod.spec?.containers[0];
    expect(pod.metadata?.name).toBe('cdi-upload-my.disk');
    expect(c?.command).toEqual(['cdi', 'uploadserver']);
    expect(c?.image).toBe('cdi:1');
    expect(c?.readinessProbe?.httpGet).toEqual({ path: '/healthz', port: 8443, scheme: 'HTTPS' });
    expect(c?.volumeMounts).toEqual([
      { name: 'cdi-data-vol', mountPath: '/data' },
      { name: 'cdi-tmp', mountPath: '/tmp' },
      { name: 'tls', mountPath: '/etc/tls', readOnly: true },
    ]);
    expect(pod.spec?.volumes?.find((v) => v.name === 'tls')?.secret?.secretName).toBe(
      'cdi-upload-my-disk',
    );
    expect(pod.spec?.restartPolicy).toBe('OnFailure');
    expect(pod.spec?.priorityClassName).toBe('high');
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({ uid: 'pvc-uid', controller: true });
    expect(pod.metadata?.labels).toMatchObject({
      team: 'a',
      app: 'containerized-data-importer',
      'cdi.kubevirt.io': 'cdi-upload-server',
      'cdi.kubevirt.io/uploadTarget': 'pvc-uid',
    });
  });

  it('mounts a block claim as a device', () => {
    const pod = buildUploadPod({ pvc: claim('Block'), config, settings });
    const c = pod.spec?.containers[0];
    expect(c?.volumeDevices).toEqual([
      { name: 'cdi-data-vol', devicePath: '/dev/cdi-block-volume' },
    ]);
    expect(c?.volumeMounts?.map((m) => m.name)).toEqual(['cdi-tmp', 'tls']);
  });
});

describe('buildUploadService and buildUploadSecret', () => {
  it('selects exactly the upload pod of the claim', () => {
    const pvc = claim('Filesystem');
    const pod = buildUploadPod({ pvc, config, settings });
    const svc = buildUploadService(pvc);
    expect(svc.metadata?.name).toBe('cdi-upload-my-disk');
    expect(svc.spec?.ports).toEqual([
      { name: 'uploadserver', protocol: 'TCP', port: 8443, targetPort: 8443 },
    ]);
    for (const [k, v] of Object.entries(svc.spec?.selector ?? {}))
      expect(pod.metadata?.labels?.[k]).toBe(v);
    expect(Object.keys(svc.spec?.selector ?? {})).toEqual(['service']);
  });

  it('holds the key, certificate and client CA the pod env names', () => {
    const secret = buildUploadSecret(claim('Filesystem'), {
      keyPem: 'K',
      certPem: 'C',
      clientCaPem: 'CA',
    });
    const decoded = Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
    );
    expect(decoded).toEqual({ 'tls.key': 'K', 'tls.crt': 'C', 'ca.crt': 'CA' });
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(secret.metadata?.ownerReferences?.[0]?.uid).toBe('pvc-uid');
  });
});
