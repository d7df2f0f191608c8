// SPDX-License-Identifier: Apache-2.0
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Annotations, ImporterEnv } from '../../common/contract.js';
import { effectiveConfig, parseControllerSettings } from '../config.js';
import { buildImporterPod, importerEnv } from './importer-pod.js';
import { buildScratchPvc } from './scratch-pvc.js';

const settings = parseControllerSettings({ IMPORTER_IMAGE: 'reg/importer:v1' }, 'test');
const classes = [
  { name: 'standard', isDefault: true, volumeBindingMode: 'Immediate' },
  { name: 'scratchy', isDefault: false, volumeBindingMode: 'Immediate' },
];

function claim(
  annotations: Record<string, string>,
  opts: { block?: boolean; owners?: number } = {},
): V1PersistentVolumeClaim {
  return {
    metadata: {
      name: 'disk',
      namespace: 'ns',
      uid: 'pvc-uid',
      labels: { team: 'a' },
      annotations,
      ownerReferences: Array.from({ length: opts.owners ?? 1 }, (_, i) => ({
        apiVersion: 'cdi.kubevirt.io/v1beta1',
        kind: 'DataVolume',
        name: 'disk',
        uid: `dv-uid-${i}`,
      })),
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
      ...(opts.block === true ? { volumeMode: 'Block' } : {}),
    },
  };
}

function envMap(pod: V1Pod): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of pod.spec?.containers[0]?.env ?? []) {
    out[e.name] =
      e.value ??
      `secret:${e.valueFrom?.secretKeyRef?.name ?? ''}/${e.valueFrom?.secretKeyRef?.key ?? ''}`;
  }
  return out;
}

const baseConfig = effectiveConfig(undefined, classes);

describe('buildImporterPod', () => {
  it('builds CDI’s importer pod for an http claim', () => {
    const pod = buildImporterPod({
      pvc: claim({ [Annotations.Endpoint]: 'http://h/x.qcow2', [Annotations.Source]: 'http' }),
      config: baseConfig,
      settings,
      scratch: false,
    });
    const c = pod.spec?.containers[0];
    expect(pod.metadata?.name).toBe('importer-disk');
    expect(pod.metadata?.labels).toMatchObject({
      app: 'containerized-data-importer',
      'cdi.kubevirt.io': 'importer',
      'prometheus.cdi.kubevirt.io': 'true',
    });
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'PersistentVolumeClaim',
      name: 'disk',
      uid: 'pvc-uid',
      controller: true,
    });
    expect(pod.spec?.restartPolicy).toBe('OnFailure');
    expect(c?.image).toBe('reg/importer:v1');
    expect(c?.command).toEqual(['cdi', 'importer']);
    expect(c?.ports).toEqual([{ name: 'metrics', containerPort: 8443, protocol: 'TCP' }]);
    expect(c?.terminationMessagePath).toBe('/dev/termination-log');
    expect(c?.terminationMessagePolicy).toBe('FallbackToLogsOnError');
    expect(c?.resources).toEqual({
      limits: { cpu: '750m', memory: '600M' },
      requests: { cpu: '100m', memory: '60M' },
    });
    expect(c?.volumeMounts).toEqual([
      { name: 'cdi-data-vol', mountPath: '/data' },
      { name: 'cdi-tmp', mountPath: '/tmp' },
    ]);
    expect(c?.volumeDevices).toBeUndefined();
    expect(envMap(pod)).toMatchObject({
      [ImporterEnv.Source]: 'http',
      [ImporterEnv.Endpoint]: 'http://h/x.qcow2',
      [ImporterEnv.ContentType]: 'kubevirt',
      [ImporterEnv.ImageSize]: '1Gi',
      [ImporterEnv.OwnerUid]: 'dv-uid-0',
      [ImporterEnv.FilesystemOverhead]: '0.06',
      [ImporterEnv.InsecureTls]: 'false',
      [ImporterEnv.Preallocation]: 'false',
    });
  });

  it.each<{
    what: string;
    anns: Record<string, string>;
    settings?: ReturnType<typeof parseControllerSettings>;
    block?: boolean;
    owners?: number;
    want: Record<string, string>;
    absent?: string[];
  }>([
    {
      what: 'secret, CA, checksum, headers',
      anns: {
        [Annotations.Endpoint]: 'https://h/x',
        [Annotations.SecretName]: 'creds',
        [Annotations.CertConfigMap]: 'ca',
        [Annotations.Checksum]: 'sha256:00',
        [`${Annotations.ExtraHeadersPrefix}.1`]: 'B: 2',
        [`${Annotations.ExtraHeadersPrefix}.0`]: 'A: 1',
        [Annotations.InsecureSkipVerify]: 'true',
        [Annotations.PreallocationRequested]: 'true',
      },
      want: {
        [ImporterEnv.Source]: 'http',
        [ImporterEnv.AccessKeyId]: 'secret:creds/accessKeyId',
        [ImporterEnv.SecretKey]: 'secret:creds/secretKey',
        [ImporterEnv.CertDir]: '/certs',
        [ImporterEnv.Checksum]: 'sha256:00',
        [`${ImporterEnv.ExtraHeaderPrefix}0`]: 'A: 1',
        [`${ImporterEnv.ExtraHeaderPrefix}1`]: 'B: 2',
        [ImporterEnv.InsecureTls]: 'true',
        [ImporterEnv.Preallocation]: 'true',
      },
    },
    {
      what: 'block target has no filesystem overhead',
      anns: { [Annotations.Endpoint]: 'http://h/x' },
      block: true,
      want: { [ImporterEnv.FilesystemOverhead]: '0' },
    },
    {
      what: 'blank source',
      anns: { [Annotations.Source]: 'none' },
      want: { [ImporterEnv.Source]: 'none', [ImporterEnv.Endpoint]: '' },
    },
    {
      what: 'unknown source falls back to http',
      anns: { [Annotations.Source]: 'glance', [Annotations.Endpoint]: 'http://h/x' },
      want: { [ImporterEnv.Source]: 'http' },
    },
    {
      what: 'registry with architecture, insecure registry from CDIConfig',
      anns: {
        [Annotations.Source]: 'registry',
        [Annotations.Endpoint]: 'docker://reg.local:5000/img:t',
        [Annotations.RegistryImageArchitecture]: 'arm64',
      },
      want: {
        [ImporterEnv.Source]: 'registry',
        [ImporterEnv.PullMethod]: 'pod',
        [ImporterEnv.RegistryImageArchitecture]: 'arm64',
        [ImporterEnv.InsecureTls]: 'true',
      },
    },
    {
      what: 'gcs with a key Secret: the key file, not an access key pair',
      anns: {
        [Annotations.Source]: 'gcs',
        [Annotations.Endpoint]: 'gs://bucket/disk.img',
        [Annotations.SecretName]: 'gcs-key',
      },
      want: {
        [ImporterEnv.Source]: 'gcs',
        [ImporterEnv.Endpoint]: 'gs://bucket/disk.img',
        [ImporterEnv.GoogleCredentialsFile]: '/google/credentials.json',
      },
      absent: [ImporterEnv.AccessKeyId, ImporterEnv.SecretKey],
    },
    {
      what: 'gcs with the controller’s endpoint override',
      anns: { [Annotations.Source]: 'gcs', [Annotations.Endpoint]: 'gs://bucket/disk.img' },
      settings: parseControllerSettings(
        { IMPORTER_IMAGE: 'reg/importer:v1', STORAGE_EMULATOR_HOST: 'gcs.local:4443' },
        'test',
      ),
      want: { [ImporterEnv.StorageEmulatorHost]: 'gcs.local:4443' },
    },
    {
      what: 'http ignores the gcs endpoint override',
      anns: { [Annotations.Endpoint]: 'http://h/x' },
      settings: parseControllerSettings(
        { IMPORTER_IMAGE: 'reg/importer:v1', STORAGE_EMULATOR_HOST: 'gcs.local:4443' },
        'test',
      ),
      want: {},
      absent: [ImporterEnv.StorageEmulatorHost],
    },
    {
      what: 'gcs without a Secret is anonymous',
      anns: { [Annotations.Source]: 'gcs', [Annotations.Endpoint]: 'gs://bucket/disk.img' },
      want: { [ImporterEnv.Source]: 'gcs' },
      absent: [ImporterEnv.GoogleCredentialsFile, ImporterEnv.AccessKeyId],
    },
    {
      what: 'bare claim: owner uid is the claim’s',
      anns: { [Annotations.Endpoint]: 'http://h/x' },
      owners: 0,
      want: { [ImporterEnv.OwnerUid]: 'pvc-uid' },
      absent: [ImporterEnv.AccessKeyId, ImporterEnv.CertDir, ImporterEnv.Checksum],
    },
  ])('env: $what', ({ anns, settings: own, block, owners, want, absent }) => {
    const config = effectiveConfig({ insecureRegistries: ['reg.local:5000'] }, classes);
    const pod = buildImporterPod({
      pvc: claim(anns, {
        ...(block === undefined ? {} : { block }),
        ...(owners === undefined ? {} : { owners }),
      }),
      config,
      settings: own ?? settings,
      scratch: false,
    });
    const env = envMap(pod);
    expect(env).toMatchObject(want);
    for (const name of absent ?? []) expect(env[name]).toBeUndefined();
  });

  it('mounts a block claim as the device and scratch, CA and header secrets as volumes', () => {
    const pod = buildImporterPod({
      pvc: claim(
        {
          [Annotations.Endpoint]: 'http://h/x',
          [Annotations.CertConfigMap]: 'ca',
          [`${Annotations.SecretExtraHeadersPrefix}.0`]: 'hdr',
        },
        { block: true },
      ),
      config: baseConfig,
      settings,
      scratch: true,
    });
    const c = pod.spec?.containers[0];
    expect(c?.volumeDevices).toEqual([
      { name: 'cdi-data-vol', devicePath: '/dev/cdi-block-volume' },
    ]);
    expect(c?.volumeMounts).toEqual([
      { name: 'cdi-tmp', mountPath: '/tmp' },
      { name: 'cdi-scratch-vol', mountPath: '/scratch' },
      { name: 'cdi-cert-vol', mountPath: '/certs' },
      { name: 'cdi-secret-extra-headers-vol-0', mountPath: '/extraheaders/0' },
    ]);
    expect(
      pod.spec?.volumes?.map(
        (v) =>
          v.persistentVolumeClaim?.claimName ??
          v.configMap?.name ??
          v.secret?.secretName ??
          (v.emptyDir === undefined ? undefined : `emptyDir:${v.name}`),
      ),
    ).toEqual(['disk', 'emptyDir:cdi-tmp', 'disk-scratch', 'ca', 'hdr']);
  });

  it('mounts a gcs key Secret at /google, as CDI does', () => {
    const pod = buildImporterPod({
      pvc: claim({
        [Annotations.Source]: 'gcs',
        [Annotations.Endpoint]: 'gs://b/o',
        [Annotations.SecretName]: 'gcs-key',
      }),
      config: baseConfig,
      settings,
      scratch: false,
    });
    expect(pod.spec?.containers[0]?.volumeMounts).toContainEqual({
      name: 'cdi-secret-vol',
      mountPath: '/google',
    });
    expect(pod.spec?.volumes).toContainEqual({
      name: 'cdi-secret-vol',
      secret: { secretName: 'gcs-key' },
    });
  });

  it('applies CDIConfig resources, proxy and priority class', () => {
    const config = effectiveConfig(
      {
        podResourceRequirements: { limits: { memory: '1G' } },
        importProxy: { HTTPProxy: 'http://proxy:3128', trustedCAProxy: 'proxy-ca' },
      },
      classes,
    );
    const pod = buildImporterPod({
      pvc: claim({ [Annotations.Endpoint]: 'http://h/x', [Annotations.PriorityClassName]: 'high' }),
      config,
      settings,
      scratch: false,
    });
    expect(pod.spec?.priorityClassName).toBe('high');
    expect(pod.spec?.containers[0]?.resources?.limits).toEqual({ cpu: '750m', memory: '1G' });
    expect(importerEnv({ pvc: claim({}), config, settings, scratch: false })).toEqual(
      expect.arrayContaining([
        { name: 'http_proxy', value: 'http://proxy:3128' },
        { name: ImporterEnv.ProxyCertDir, value: '/proxycerts/' },
      ]),
    );
  });
});

describe('registry pullMethod node', () => {
  const pod = buildImporterPod({
    pvc: claim({
      [Annotations.Source]: 'registry',
      [Annotations.Endpoint]: 'docker://127.0.0.1:5000/disks/fedora:39',
      [Annotations.RegistryImportMethod]: 'node',
    }),
    config: baseConfig,
    settings,
    scratch: false,
  });
  const shared = { name: 'shared-volume', mountPath: '/shared' };

  it('copies the server with the importer image in an init container', () => {
    const init = pod.spec?.initContainers ?? [];
    expect(init.map((c) => [c.name, c.image, c.command])).toEqual([
      [
        'init',
        'reg/importer:v1',
        ['sh', '-c', 'cp /usr/bin/cdi-containerimage-server /shared/server'],
      ],
    ]);
    expect(init[0]?.volumeMounts).toEqual([shared]);
    expect(init[0]?.securityContext?.runAsUser).toBe(107);
  });

  it('runs the disk image as the server container, beside the importer', () => {
    const containers = pod.spec?.containers ?? [];
    expect(containers.map((c) => c.name)).toEqual(['importer', 'server']);
    const server = containers[1];
    expect(server?.image).toBe('127.0.0.1:5000/disks/fedora:39');
    expect(server?.command).toEqual([
      '/shared/server',
      '-p',
      '8100',
      '-image-dir',
      '/disk',
      '-ready-file',
      '/shared/ready',
      '-done-file',
      '/shared/done',
    ]);
    expect(server?.securityContext?.capabilities?.drop).toEqual(['ALL']);
    expect(containers[0]?.volumeMounts).toContainEqual(shared);
    expect(pod.spec?.volumes).toContainEqual({ name: 'shared-volume', emptyDir: {} });
  });

  it('points the importer at the server over HTTP', () => {
    expect(envMap(pod)).toMatchObject({
      [ImporterEnv.Source]: 'http',
      [ImporterEnv.Endpoint]: 'http://localhost:8100/disk.img',
      [ImporterEnv.PullMethod]: 'node',
      [ImporterEnv.ReadyFile]: '/shared/ready',
      [ImporterEnv.DoneFile]: '/shared/done',
    });
  });

  it("selects a node of the image's architecture", () => {
    const arm = buildImporterPod({
      pvc: claim({
        [Annotations.Source]: 'registry',
        [Annotations.Endpoint]: 'docker://127.0.0.1:5000/disks/fedora:39',
        [Annotations.RegistryImportMethod]: 'node',
        [Annotations.RegistryImageArchitecture]: 'arm64',
      }),
      config: baseConfig,
      settings,
      scratch: false,
    });
    expect(arm.spec?.nodeSelector).toEqual({ 'kubernetes.io/arch': 'arm64' });
    expect(pod.spec?.nodeSelector).toBeUndefined();
  });

  it('leaves a pod pull alone', () => {
    const plain = buildImporterPod({
      pvc: claim({
        [Annotations.Source]: 'registry',
        [Annotations.Endpoint]: 'docker://127.0.0.1:5000/disks/fedora:39',
      }),
      config: baseConfig,
      settings,
      scratch: false,
    });
    expect(plain.spec?.initContainers).toBeUndefined();
    expect(plain.spec?.containers.map((c) => c.name)).toEqual(['importer']);
    expect(envMap(plain)[ImporterEnv.ReadyFile]).toBeUndefined();
  });
});

describe('buildScratchPvc', () => {
  it('is owned by the pod, sized for the image, on the configured scratch class', () => {
    const config = effectiveConfig({ scratchSpaceStorageClass: 'scratchy' }, classes);
    const pod: V1Pod = { metadata: { name: 'importer-disk', uid: 'pod-uid' } };
    const target = claim({});
    target.spec = {
      ...target.spec,
      resources: { requests: { storage: String(1060 * 1024 * 1024) } },
    };
    const scratch = buildScratchPvc(target, pod, config);
    expect(scratch.metadata?.name).toBe('disk-scratch');
    expect(scratch.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'Pod',
      name: 'importer-disk',
      uid: 'pod-uid',
    });
    expect(scratch.spec?.storageClassName).toBe('scratchy');
    expect(scratch.spec?.resources?.requests?.['storage']).toBe(String(1060 * 1024 * 1024));
    expect(scratch.metadata?.labels).toMatchObject({ 'velero.io/exclude-from-backup': 'true' });
  });

  it('falls back to the target’s class when the scratch class does not exist', () => {
    const config = effectiveConfig({ scratchSpaceStorageClass: 'missing' }, classes);
    const scratch = buildScratchPvc(claim({}), { metadata: { name: 'p', uid: 'u' } }, config);
    expect(scratch.spec?.storageClassName).toBe('standard');
  });
});
