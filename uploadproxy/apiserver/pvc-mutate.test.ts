// SPDX-License-Identifier: Apache-2.0
/**
 * The PVC mutating webhook, review in and review out, over a table of StorageProfiles: the
 * patch it answers, applied to the claim, gives the modes CDI renders.
 */
import { describe, expect, it } from 'vitest';
import type { ClaimPropertySet } from '../../common/api/datavolume.js';
import { APPLY_STORAGE_PROFILE_LABEL, mutatePvcReview, type PvcMutateDeps } from './pvc-mutate.js';

/** StorageProfiles by class; the default class is "local". */
const PROFILES: Record<string, ClaimPropertySet[]> = {
  local: [{ accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' }],
  ceph: [
    { accessModes: ['ReadWriteMany'], volumeMode: 'Block' },
    { accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' },
  ],
};
const asked: (string | undefined)[] = [];
const deps: PvcMutateDeps = {
  claimPropertySets: (name) => {
    asked.push(name);
    return Promise.resolve(PROFILES[name ?? 'local'] ?? []);
  },
};

function review(spec: Record<string, unknown>, labelled = true, operation = 'CREATE'): unknown {
  return {
    request: {
      uid: 'u-2',
      operation,
      resource: { group: '', version: 'v1', resource: 'persistentvolumeclaims' },
      namespace: 'ns',
      object: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: {
          name: 'c',
          namespace: 'ns',
          ...(labelled ? { labels: { [APPLY_STORAGE_PROFILE_LABEL]: 'true' } } : {}),
        },
        spec,
      },
    },
  };
}

/** Applies the answer's JSON patch (only `add` to /spec members, as the webhook writes). */
function patched(spec: Record<string, unknown>, answer: unknown): Record<string, unknown> {
  const response = (answer as { response: { allowed: boolean; patch?: string } }).response;
  expect(response.allowed).toBe(true);
  const out = structuredClone(spec);
  if (response.patch === undefined) return out;
  const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as {
    op: string;
    path: string;
    value: unknown;
  }[];
  for (const op of ops) {
    expect(op.op).toBe('add');
    const key = op.path.replace(/^\/spec\//, '');
    out[key] = op.value;
  }
  return out;
}

const size = { resources: { requests: { storage: '1Gi' } } };

describe('PVC mutating webhook', () => {
  it.each<{ what: string; spec: Record<string, unknown>; modes: Record<string, unknown> }>([
    {
      what: 'no modes, default class',
      spec: { ...size },
      modes: { accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' },
    },
    {
      what: 'no modes, named class: its first claim property set',
      spec: { ...size, storageClassName: 'ceph' },
      modes: { accessModes: ['ReadWriteMany'], volumeMode: 'Block' },
    },
    {
      what: 'FromStorageProfile volume mode',
      spec: { ...size, storageClassName: 'ceph', volumeMode: 'FromStorageProfile' },
      modes: { accessModes: ['ReadWriteMany'], volumeMode: 'Block' },
    },
    {
      what: 'only a volume mode: the access modes of the set with it',
      spec: { ...size, storageClassName: 'ceph', volumeMode: 'Filesystem' },
      modes: { accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' },
    },
    {
      what: 'only access modes: the volume mode of the set holding them',
      spec: { ...size, storageClassName: 'ceph', accessModes: ['ReadWriteOnce'] },
      modes: { accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' },
    },
    {
      what: 'a class without a profile: ReadWriteOnce and Filesystem',
      spec: { ...size, storageClassName: 'nfs' },
      modes: { accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' },
    },
  ])('fills $what', async ({ spec, modes }) => {
    const out = patched(spec, await mutatePvcReview(review(spec), deps));
    expect(out).toEqual({ ...spec, ...modes });
  });

  it('asks for the named class, or the default one', async () => {
    asked.length = 0;
    await mutatePvcReview(review({ ...size, storageClassName: 'ceph' }), deps);
    await mutatePvcReview(review({ ...size }), deps);
    expect(asked).toEqual(['ceph', undefined]);
  });

  it.each<{ what: string; review: unknown }>([
    {
      what: 'a claim with both modes',
      review: review({ ...size, accessModes: ['ReadWriteMany'], volumeMode: 'Block' }),
    },
    { what: 'an unlabelled claim', review: review({ ...size }, false) },
    { what: 'an update', review: review({ ...size }, true, 'UPDATE') },
  ])('leaves $what alone', async ({ review: r }) => {
    expect((await mutatePvcReview(r, deps)) as unknown).toMatchObject({
      response: { uid: 'u-2', allowed: true },
    });
    expect(JSON.stringify(await mutatePvcReview(r, deps))).not.toContain('patch');
  });

  it('refuses with the error when the profile cannot be read', async () => {
    const failing: PvcMutateDeps = {
      claimPropertySets: () => Promise.reject(new Error('cannot read StorageProfile x: 503')),
    };
    expect(await mutatePvcReview(review({ ...size }), failing)).toMatchObject({
      response: {
        allowed: false,
        status: { code: 400, message: 'cannot read StorageProfile x: 503' },
      },
    });
  });
});
