// SPDX-License-Identifier: Apache-2.0
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import {
  classifyEntry,
  isDiskCandidate,
  layerCompression,
  normalizeEntryPath,
  openLayer,
  OverlayTracker,
} from './layers.js';

/** The `code` of what `fn` throws (undefined when it does not throw). */
function thrownCode(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return undefined;
}

describe('normalizeEntryPath', () => {
  it.each([
    { what: 'leading ./', name: './disk/a.img', path: 'disk/a.img' },
    { what: 'absolute', name: '/disk/a.img', path: 'disk/a.img' },
    { what: 'double slashes', name: 'disk//a.img', path: 'disk/a.img' },
    { what: 'a directory with trailing slash', name: './disk/', path: 'disk' },
    { what: 'a harmless ..', name: 'disk/x/../a.img', path: 'disk/a.img' },
  ])('normalises $what', ({ name, path }) => {
    expect(normalizeEntryPath(name)).toBe(path);
  });

  it.each([
    { what: 'a leading ..', name: '../disk/a.img' },
    { what: 'climbing above the root', name: 'disk/../../etc/passwd' },
  ])('refuses $what', ({ name }) => {
    expect(thrownCode(() => normalizeEntryPath(name))).toBe('CDI_ARCHIVE_UNSAFE_ENTRY');
  });
});

describe('classifyEntry and isDiskCandidate', () => {
  it.each([
    {
      what: 'a disk file',
      name: 'disk/a.qcow2',
      type: 'file',
      kind: { kind: 'file', path: 'disk/a.qcow2' },
      disk: true,
    },
    {
      what: 'a ./disk file',
      name: './disk/a.img',
      type: 'file',
      kind: { kind: 'file', path: 'disk/a.img' },
      disk: true,
    },
    {
      what: 'the disk directory',
      name: 'disk/',
      type: 'directory',
      kind: { kind: 'directory', path: 'disk' },
      disk: false,
    },
    {
      what: 'a nested file',
      name: 'disk/sub/a.img',
      type: 'file',
      kind: { kind: 'file', path: 'disk/sub/a.img' },
      disk: false,
    },
    {
      what: 'a file named disk',
      name: 'disk',
      type: 'file',
      kind: { kind: 'file', path: 'disk' },
      disk: false,
    },
    {
      what: 'a whiteout',
      name: 'disk/.wh.a.img',
      type: 'file',
      kind: { kind: 'whiteout', path: 'disk/a.img' },
      disk: false,
    },
    {
      what: 'a root whiteout',
      name: '.wh.disk',
      type: 'file',
      kind: { kind: 'whiteout', path: 'disk' },
      disk: false,
    },
    {
      what: 'an opaque marker',
      name: './disk/.wh..wh..opq',
      type: 'file',
      kind: { kind: 'opaque', dir: 'disk' },
      disk: false,
    },
    {
      what: 'a symlink',
      name: 'disk/a.img',
      type: 'symlink',
      kind: { kind: 'other', path: 'disk/a.img' },
      disk: false,
    },
    {
      what: 'a hard link',
      name: 'disk/a.img',
      type: 'link',
      kind: { kind: 'other', path: 'disk/a.img' },
      disk: false,
    },
  ])('$what', ({ name, type, kind, disk }) => {
    const k = classifyEntry(name, type);
    expect(k).toEqual(kind);
    expect(isDiskCandidate(k)).toBe(disk);
  });
});

describe('OverlayTracker (walking from the top layer down)', () => {
  it.each([
    {
      what: 'a whiteout of the file',
      upper: [['disk/.wh.a.img', 'file']],
      path: 'disk/a.img',
      hidden: true,
    },
    {
      what: 'a whiteout of the parent dir',
      upper: [['.wh.disk', 'file']],
      path: 'disk/a.img',
      hidden: true,
    },
    {
      what: 'an opaque parent dir',
      upper: [['disk/.wh..wh..opq', 'file']],
      path: 'disk/a.img',
      hidden: true,
    },
    {
      what: 'an opaque sibling dir',
      upper: [['etc/.wh..wh..opq', 'file']],
      path: 'disk/a.img',
      hidden: false,
    },
    {
      what: 'a file replacing the parent dir',
      upper: [['disk', 'file']],
      path: 'disk/a.img',
      hidden: true,
    },
    {
      what: 'a directory entry of the parent',
      upper: [['disk/', 'directory']],
      path: 'disk/a.img',
      hidden: false,
    },
    {
      what: 'a whiteout of another file',
      upper: [['disk/.wh.b.img', 'file']],
      path: 'disk/a.img',
      hidden: false,
    },
    {
      what: 'a root opaque marker',
      upper: [['.wh..wh..opq', 'file']],
      path: 'disk/a.img',
      hidden: true,
    },
  ])('$what → hidden $hidden', ({ upper, path, hidden }) => {
    const t = new OverlayTracker();
    for (const [name, type] of upper) t.record(classifyEntry(name as string, type));
    // Same-layer entries never hide each other.
    expect(t.isHidden(path)).toBe(false);
    t.endLayer();
    expect(t.isHidden(path)).toBe(hidden);
  });
});

describe('layerCompression', () => {
  it.each([
    { type: 'application/vnd.oci.image.layer.v1.tar', c: 'none' },
    { type: 'application/vnd.oci.image.layer.v1.tar+gzip', c: 'gzip' },
    { type: 'application/vnd.oci.image.layer.v1.tar+zstd', c: 'zstd' },
    { type: 'application/vnd.docker.image.rootfs.diff.tar.gzip', c: 'gzip' },
  ])('$type → $c', ({ type, c }) => {
    expect(layerCompression(type)).toBe(c);
  });

  it('refuses an unknown media type', () => {
    expect(thrownCode(() => layerCompression('application/x-bzip2'))).toBe(
      'CDI_REGISTRY_PULL_FAILED',
    );
  });
});

async function tarOf(entries: { name: string; data: string }[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name }, e.data);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('openLayer', () => {
  const signal = new AbortController().signal;

  it('lists the entries of a gzip layer and checks its digest', async () => {
    const blob = gzipSync(
      await tarOf([
        { name: 'a', data: 'A' },
        { name: 'disk/b', data: 'BB' },
      ]),
    );
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const layer = openLayer(
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: blob.length },
      Readable.from([blob]),
      signal,
    );
    const seen: string[] = [];
    for (let e = await layer.next(); e !== undefined; e = await layer.next()) {
      let body = '';
      for await (const c of e as AsyncIterable<Buffer>) body += c.toString();
      seen.push(`${e.header.name}=${body}`);
    }
    await layer.done;
    expect(seen).toEqual(['a=A', 'disk/b=BB']);
  });

  it.each([
    {
      what: 'a wrong digest',
      digestOf: () => `sha256:${'0'.repeat(64)}`,
      code: 'CDI_REGISTRY_DIGEST_MISMATCH',
    },
    { what: 'a truncated tar', truncate: true, code: 'CDI_ARCHIVE_INVALID' },
  ])('fails on $what', async ({ digestOf, truncate, code }) => {
    let blob = await tarOf([{ name: 'disk/b', data: 'x'.repeat(5000) }]);
    if (truncate === true) blob = blob.subarray(0, 2048);
    const digest = digestOf?.() ?? `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const layer = openLayer(
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: blob.length },
      Readable.from([blob]),
      signal,
    );
    const drain = async (): Promise<void> => {
      for (let e = await layer.next(); e !== undefined; e = await layer.next()) e.resume();
      await layer.done;
    };
    await expect(drain()).rejects.toMatchObject({ code });
  });
});
