// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import {
  bootcLabel,
  choosePlatform,
  envNameToLabel,
  envsToLabels,
  machineArchitecture,
  MediaTypes,
  parseImageConfig,
  parseManifest,
  type Descriptor,
} from './manifest.js';

/** The `code` of what `fn` throws (undefined when it does not throw). */
function thrownCode(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return undefined;
}

const d = (n: string): string => `sha256:${n.repeat(64)}`;
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

describe('parseManifest', () => {
  const image = {
    schemaVersion: 2,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('c'), size: 10 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('1'), size: 5 }],
  };
  const index = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: MediaTypes.OciManifest,
        digest: d('a'),
        size: 3,
        platform: { architecture: 'amd64', os: 'linux' },
      },
    ],
  };

  it.each([
    {
      what: 'an OCI manifest',
      doc: { ...image, mediaType: MediaTypes.OciManifest },
      ct: '',
      kind: 'image',
    },
    {
      what: 'a Docker schema 2 manifest',
      doc: image,
      ct: MediaTypes.DockerManifest,
      kind: 'image',
    },
    {
      what: 'an OCI index',
      doc: { ...index, mediaType: MediaTypes.OciIndex },
      ct: '',
      kind: 'index',
    },
    {
      what: 'a Docker manifest list',
      doc: index,
      ct: MediaTypes.DockerManifestList,
      kind: 'index',
    },
  ])('reads $what', ({ doc, ct, kind }) => {
    const m = parseManifest(json(doc), ct);
    expect(m.kind).toBe(kind);
    if (m.kind === 'image') {
      expect(m.config.digest).toBe(d('c'));
      expect(m.layers.map((l) => l.digest)).toEqual([d('1')]);
    } else {
      expect(m.manifests[0]?.platform).toEqual({ architecture: 'amd64', os: 'linux' });
    }
  });

  it.each([
    { what: 'schema 1', doc: { schemaVersion: 1, fsLayers: [] } },
    { what: 'not JSON', doc: undefined },
    { what: 'a layer without digest', doc: { ...image, layers: [{ size: 1 }] } },
    { what: 'a negative size', doc: { ...image, layers: [{ digest: d('1'), size: -1 }] } },
    { what: 'no layers', doc: { schemaVersion: 2, config: image.config } },
  ])('refuses $what', ({ doc }) => {
    const bytes = doc === undefined ? Buffer.from('{nope') : json(doc);
    expect(thrownCode(() => parseManifest(bytes, ''))).toBe('CDI_REGISTRY_PULL_FAILED');
  });
});

describe('choosePlatform', () => {
  const entries: Descriptor[] = [
    { mediaType: '', digest: d('1'), size: 1, platform: { architecture: 'amd64', os: 'linux' } },
    {
      mediaType: '',
      digest: d('2'),
      size: 1,
      platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
    },
    { mediaType: '', digest: d('3'), size: 1, platform: { architecture: 's390x', os: 'linux' } },
    {
      mediaType: '',
      digest: d('4'),
      size: 1,
      platform: { architecture: 'unknown', os: 'unknown' },
    },
    { mediaType: '', digest: d('5'), size: 1, platform: { architecture: 'amd64', os: 'windows' } },
  ];
  it.each([
    { what: 'amd64', arch: 'amd64', variant: undefined, digest: d('1') },
    { what: 'x86_64 alias', arch: 'x86_64', variant: undefined, digest: d('1') },
    { what: 'arm64 without variant', arch: 'arm64', variant: undefined, digest: d('2') },
    { what: 'arm64 v8', arch: 'arm64', variant: 'v8', digest: d('2') },
    { what: 's390x', arch: 's390x', variant: undefined, digest: d('3') },
  ])('picks $what', ({ arch, variant, digest }) => {
    const wanted = {
      architecture: arch,
      os: 'linux',
      ...(variant === undefined ? {} : { variant }),
    };
    expect(choosePlatform(entries, wanted).digest).toBe(digest);
  });

  it('names the wanted and present architectures when absent', () => {
    let caught: { code?: unknown; message?: unknown } = {};
    try {
      choosePlatform(entries, { architecture: 'absent', os: 'linux' });
    } catch (err) {
      caught = err as typeof caught;
    }
    expect(caught.code).toBe('CDI_REGISTRY_ARCH_NOT_FOUND');
    expect(caught.message).toBe(
      'choosing image instance: no image found in image index for architecture "absent", ' +
        'variant "", OS "linux" (the index has: linux/amd64, linux/arm64/v8, linux/s390x, windows/amd64)',
    );
  });
});

describe('image config', () => {
  it('reads architecture, env and labels', () => {
    const cfg = parseImageConfig(
      json({
        architecture: 'arm64',
        os: 'linux',
        config: { Env: ['A=1', 7], Labels: { 'containers.bootc': '1', n: 3 } },
      }),
    );
    expect(cfg).toEqual({
      architecture: 'arm64',
      os: 'linux',
      env: ['A=1'],
      labels: { 'containers.bootc': '1' },
    });
  });

  it.each([
    {
      what: 'prefix with one word',
      env: 'INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE',
      label: 'instancetype.kubevirt.io/default-instancetype',
    },
    {
      what: 'prefix with two words',
      env: 'FOO_BAR_KUBEVIRT_IO_BAZ',
      label: 'foo.bar.kubevirt.io/baz',
    },
    { what: 'no prefix', env: 'KUBEVIRT_IO_OS', label: 'kubevirt.io/os' },
    { what: 'marker in the middle of a word', env: 'XKUBEVIRT_IO_A_B', label: 'x.kubevirt.io/a-b' },
  ])('maps env names to labels like CDI: $what', ({ env, label }) => {
    expect(envNameToLabel(env)).toBe(label);
  });

  it('keeps only env vars whose name holds KUBEVIRT_IO_, values intact', () => {
    expect(
      envsToLabels([
        'PATH=/bin',
        'INSTANCETYPE_KUBEVIRT_IO_DEFAULT_PREFERENCE=fedora=x',
        'NOVALUE_KUBEVIRT_IO_X',
        'VALUE=has_KUBEVIRT_IO_inside',
      ]),
    ).toEqual({ 'instancetype.kubevirt.io/default-preference': 'fedora=x' });
  });

  it.each([
    {
      what: 'containers.bootc=1',
      labels: { 'containers.bootc': '1' },
      expected: 'containers.bootc',
    },
    {
      what: 'ostree.bootable=true',
      labels: { 'ostree.bootable': 'true' },
      expected: 'ostree.bootable',
    },
    { what: 'containers.bootc=0', labels: { 'containers.bootc': '0' }, expected: undefined },
    { what: 'no labels', labels: {}, expected: undefined },
  ])('detects bootc: $what', ({ labels, expected }) => {
    expect(bootcLabel(labels)).toBe(expected);
  });

  it.each([
    { node: 'x64', oci: 'amd64' },
    { node: 'arm64', oci: 'arm64' },
    { node: 'ppc64', oci: 'ppc64le' },
    { node: 's390x', oci: 's390x' },
    { node: 'ia32', oci: '386' },
  ])('maps process.arch $node to $oci', ({ node, oci }) => {
    expect(machineArchitecture(node)).toBe(oci);
  });
});
