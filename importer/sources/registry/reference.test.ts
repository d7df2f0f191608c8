// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import {
  formatImageReference,
  isInsecureRegistry,
  manifestReference,
  parseImageReference,
} from './reference.js';

/** The `code` of what `fn` throws (undefined when it does not throw). */
function thrownCode(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return undefined;
}

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('parseImageReference', () => {
  it.each([
    {
      what: 'host:port, nested repo and tag',
      url: 'docker://127.0.0.1:5000/kubevirt/cirros:v1',
      registry: '127.0.0.1:5000',
      apiHost: '127.0.0.1:5000',
      repository: 'kubevirt/cirros',
      tag: 'v1',
      digest: undefined,
    },
    {
      what: 'a domain and no tag (latest)',
      url: 'docker://quay.io/containerdisks/fedora',
      registry: 'quay.io',
      apiHost: 'quay.io',
      repository: 'containerdisks/fedora',
      tag: 'latest',
      digest: undefined,
    },
    {
      what: 'a digest',
      url: `docker://registry.example.com/disk@${DIGEST}`,
      registry: 'registry.example.com',
      apiHost: 'registry.example.com',
      repository: 'disk',
      tag: undefined,
      digest: DIGEST,
    },
    {
      what: 'a tag and a digest (digest wins)',
      url: `docker://localhost/disk:v2@${DIGEST}`,
      registry: 'localhost',
      apiHost: 'localhost',
      repository: 'disk',
      tag: undefined,
      digest: DIGEST,
    },
    {
      what: 'a Docker Hub short name',
      url: 'docker://fedora:39',
      registry: 'docker.io',
      apiHost: 'registry-1.docker.io',
      repository: 'library/fedora',
      tag: '39',
      digest: undefined,
    },
    {
      what: 'a Docker Hub user repository',
      url: 'docker://kubevirt/fedora-cloud-container-disk-demo',
      registry: 'docker.io',
      apiHost: 'registry-1.docker.io',
      repository: 'kubevirt/fedora-cloud-container-disk-demo',
      tag: 'latest',
      digest: undefined,
    },
  ])('parses $what', ({ url, registry, apiHost, repository, tag, digest }) => {
    expect(parseImageReference(url)).toEqual({ registry, apiHost, repository, tag, digest });
  });

  it.each([
    { what: 'another scheme', url: 'oci-archive:/tmp/x.tar' },
    { what: 'http', url: 'http://quay.io/x' },
    { what: 'upper case repository', url: 'docker://quay.io/Fedora' },
    { what: 'a short digest', url: 'docker://quay.io/x@sha256:abc' },
    { what: 'an empty repository', url: 'docker://quay.io/' },
    { what: 'a bad tag', url: 'docker://quay.io/x:-bad' },
  ])('refuses $what', ({ url }) => {
    expect(thrownCode(() => parseImageReference(url))).toBe('CDI_INVALID_ARGUMENT');
  });

  it('formats and names the manifest reference', () => {
    const byTag = parseImageReference('docker://127.0.0.1:5000/a/b:v1');
    expect(formatImageReference(byTag)).toBe('127.0.0.1:5000/a/b:v1');
    expect(manifestReference(byTag)).toBe('v1');
    const byDigest = parseImageReference(`docker://127.0.0.1:5000/a/b@${DIGEST}`);
    expect(formatImageReference(byDigest)).toBe(`127.0.0.1:5000/a/b@${DIGEST}`);
    expect(manifestReference(byDigest)).toBe(DIGEST);
  });
});

describe('isInsecureRegistry', () => {
  const ref = parseImageReference('docker://registry.local:5000/disk:v1');
  it.each([
    { what: 'the exact host:port', list: ['registry.local:5000'], expected: true },
    { what: 'with a scheme and slash', list: ['http://registry.local:5000/'], expected: true },
    { what: 'another port', list: ['registry.local:5001'], expected: false },
    { what: 'the host without its port', list: ['registry.local'], expected: false },
    { what: 'an empty list', list: [], expected: false },
  ])('$what → $expected', ({ list, expected }) => {
    expect(isInsecureRegistry(ref, list)).toBe(expected);
  });
});
