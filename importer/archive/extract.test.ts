// SPDX-License-Identifier: Apache-2.0
/**
 * Hostile archives, generated here byte by byte, extracted into a real directory: each one is
 * refused with its specific code or extracted strictly inside the target. Around the target sit
 * canary files (one named by absolute path in the archives, one in the target's parents) and the
 * whole tree outside the target is compared before and after, inode by inode.
 */
import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode } from '../../common/errors.js';
import { buildTar, type TarEntry } from '../../test/fixtures/tar-builder.js';
import {
  inodesUnder,
  listTree,
  pathsResolvingOutside,
  snapshotTree,
  type TreeListing,
} from '../../test/fixtures/tree-snapshot.js';
import { extractArchive } from './extract.js';

/** Where a row's archive aims: the canary by absolute path, and that path without its slash. */
interface Aim {
  readonly host: string;
  readonly hostRelative: string;
  /** How many `..` steps lead from the extraction root (the staging directory) to `/`. */
  readonly depth: number;
}

interface HostileRow {
  readonly what: string;
  readonly entries: (aim: Aim) => TarEntry[];
  /** The refusal's code; else the archive is extracted and the target must list exactly `tree`. */
  readonly code?: string;
  readonly tree?: TreeListing;
  /** Permission bits expected on extracted files. */
  readonly modes?: Readonly<Record<string, number>>;
}

const CANARY = 'canary: must never change\n';
const sym = (name: string, linkname: string): TarEntry => ({ name, type: 'symlink', linkname });
const hard = (name: string, linkname: string): TarEntry => ({ name, type: 'link', linkname });
const file = (name: string, body = 'x'): TarEntry => ({ name, body });
const dir = (name: string): TarEntry => ({ name, type: 'dir', mode: 0o755 });

/**
 * The reproduction of the issue: `a` → `.`, `a/b` → `..`, `b2` → `b/..` ... `bN`, then `h` → `bN/`
 * and the canary's absolute path without its slash. The issue's N is 8; here N reaches `/` from
 * the test's deeper target, so an extractor that follows the chain really hits the canary.
 */
function issueChain(hostRelative: string, length: number): TarEntry[] {
  const chain = [sym('a', '.'), sym('a/b', '..'), sym('b2', 'b/..')];
  for (let i = 3; i <= length; i++) chain.push(sym(`b${i}`, `b${i - 1}/..`));
  return [...chain, hard('h', `b${length}/${hostRelative}`)];
}

const ROWS: readonly HostileRow[] = [
  // Link chains and loops.
  {
    what: 'the issue reproduction (link chain, then a hard link through it)',
    entries: ({ hostRelative, depth }) => issueChain(hostRelative, Math.max(8, depth)),
    code: 'CDI_ARCHIVE_UNSAFE_ENTRY',
  },
  {
    what: 'the issue chain without the entry under a link',
    entries: () => [
      sym('b', '..'),
      ...[2, 3, 4, 5, 6, 7, 8].map((i) => sym(`b${i}`, `b${i - 1}/..`)),
    ],
    code: 'CDI_ARCHIVE_LINK_ESCAPE',
  },
  {
    what: 'a link to "." and one stepping up through it',
    entries: () => [sym('a', '.'), sym('b', 'a/..')],
    code: 'CDI_ARCHIVE_LINK_ESCAPE',
  },
  {
    what: 'a link inside, named by another with ".." after it (lexically inside)',
    entries: () => [dir('d'), sym('d/up', '..'), sym('x', 'd/up/..')],
    code: 'CDI_ARCHIVE_LINK_ESCAPE',
  },
  {
    what: 'a loop of two links',
    entries: () => [sym('x', 'y'), sym('y', 'x')],
    code: 'CDI_ARCHIVE_LINK_ESCAPE',
  },
  { what: 'a link to itself', entries: () => [sym('x', 'x')], code: 'CDI_ARCHIVE_LINK_ESCAPE' },
  {
    what: 'a step back out of a name the archive does not create',
    entries: () => [sym('x', 'missing/../../..')],
    code: 'CDI_ARCHIVE_LINK_ESCAPE',
  },
  // Absolute and parent link targets.
  {
    what: 'a link to the canary by absolute path',
    entries: ({ host }) => [sym('x', host)],
    code: 'CDI_ARCHIVE_LINK_ESCAPE',
  },
  { what: 'a link to /', entries: () => [sym('root', '/')], code: 'CDI_ARCHIVE_LINK_ESCAPE' },
  { what: 'a link to ..', entries: () => [sym('up', '..')], code: 'CDI_ARCHIVE_LINK_ESCAPE' },
  {
    what: 'a deep link climbing past the root',
    entries: () => [dir('d/e'), sym('d/e/x', '../../../canary.txt')],
    code: 'CDI_ARCHIVE_LINK_ESCAPE',
  },
  {
    what: "a link out and back in through the target's own name",
    entries: () => [file('f'), sym('x', '../target/f')],
    code: 'CDI_ARCHIVE_LINK_ESCAPE',
  },
  // Writes through links.
  {
    what: 'an escaping link, then a file written through it',
    entries: () => [sym('esc', '../../'), file('esc/evil')],
    code: 'CDI_ARCHIVE_UNSAFE_ENTRY',
  },
  {
    what: 'a link inside, then a file written through it',
    entries: () => [dir('d'), sym('l', 'd'), file('l/f')],
    code: 'CDI_ARCHIVE_UNSAFE_ENTRY',
  },
  {
    what: 'a file, then an entry under it',
    entries: () => [file('f'), file('f/g')],
    code: 'CDI_ARCHIVE_UNSAFE_ENTRY',
  },
  // Absolute names and "..".
  {
    what: 'an absolute file name',
    entries: ({ host }) => [file(`${host}.evil`)],
    code: 'CDI_ARCHIVE_PATH_ESCAPE',
  },
  { what: 'a file ../evil', entries: () => [file('../evil')], code: 'CDI_ARCHIVE_PATH_ESCAPE' },
  {
    what: 'a file d/../../evil',
    entries: () => [file('d/../../evil')],
    code: 'CDI_ARCHIVE_PATH_ESCAPE',
  },
  {
    what: 'a directory ../outside',
    entries: () => [dir('../outside')],
    code: 'CDI_ARCHIVE_PATH_ESCAPE',
  },
  { what: 'a file named "."', entries: () => [file('.')], code: 'CDI_ARCHIVE_UNSAFE_ENTRY' },
  // Hard links.
  {
    what: 'a hard link to the canary by absolute path',
    entries: ({ host }) => [hard('h', host)],
    code: 'CDI_ARCHIVE_PATH_ESCAPE',
  },
  {
    what: 'a hard link to the canary by ".."',
    entries: () => [hard('h', '../../../../../canary.txt')],
    code: 'CDI_ARCHIVE_PATH_ESCAPE',
  },
  {
    what: 'a hard link to the canary path without its slash',
    entries: ({ hostRelative }) => [hard('h', hostRelative)],
    code: 'CDI_ARCHIVE_HARDLINK_INVALID',
  },
  {
    what: 'a hard link through a link of the archive',
    entries: () => [file('d/f'), sym('s', 'd'), hard('h', 's/f')],
    code: 'CDI_ARCHIVE_HARDLINK_INVALID',
  },
  {
    what: 'a hard link to a link',
    entries: () => [file('f'), sym('s', 'f'), hard('h', 's')],
    code: 'CDI_ARCHIVE_HARDLINK_INVALID',
  },
  {
    what: 'a hard link to a file not extracted yet',
    entries: () => [hard('h', 'f'), file('f')],
    code: 'CDI_ARCHIVE_HARDLINK_INVALID',
  },
  {
    what: 'a hard link to a directory',
    entries: () => [dir('d'), hard('h', 'd')],
    code: 'CDI_ARCHIVE_HARDLINK_INVALID',
  },
  {
    what: 'a hard link to a file since replaced by a link',
    entries: () => [file('f'), sym('f', 'g'), file('g'), hard('h', 'f')],
    code: 'CDI_ARCHIVE_HARDLINK_INVALID',
  },
  // Devices, FIFOs, unknown types.
  {
    what: 'a character device',
    entries: () => [{ name: 'null', type: 'char' }],
    code: 'CDI_ARCHIVE_SPECIAL_FILE',
  },
  {
    what: 'a block device',
    entries: () => [{ name: 'sda', type: 'block' }],
    code: 'CDI_ARCHIVE_SPECIAL_FILE',
  },
  {
    what: 'a FIFO',
    entries: () => [{ name: 'pipe', type: 'fifo' }],
    code: 'CDI_ARCHIVE_SPECIAL_FILE',
  },
  {
    what: 'a GNU sparse entry (an unknown type)',
    entries: () => [{ name: 'sparse', type: { flag: 'S' }, body: 'x' }],
    code: 'CDI_ARCHIVE_SPECIAL_FILE',
  },
  {
    what: 'a GNUTYPE_NAMES block (CVE-2006-6097) naming ../evil',
    entries: () => [{ name: 'names', type: { flag: 'N' }, body: '../evil\0' }, file('innocent')],
    code: 'CDI_ARCHIVE_PATH_ESCAPE',
  },
  // Long names, PAX and GNU overrides.
  {
    what: 'a 300-byte name in a PAX header',
    entries: () => [file(`${'p'.repeat(140)}/${'q'.repeat(140)}/file`, 'long')],
    tree: {
      ['p'.repeat(140)]: 'dir',
      [`${'p'.repeat(140)}/${'q'.repeat(140)}`]: 'dir',
      [`${'p'.repeat(140)}/${'q'.repeat(140)}/file`]: 'file:long',
    },
  },
  {
    what: 'a component longer than 255 bytes',
    entries: () => [file('n'.repeat(256))],
    code: 'CDI_ARCHIVE_INVALID',
  },
  {
    what: 'a name longer than 4095 bytes',
    entries: () => [file(`${'d/'.repeat(2100)}f`)],
    code: 'CDI_ARCHIVE_INVALID',
  },
  {
    what: 'a PAX path ../evil behind an innocent ustar name',
    entries: () => [{ name: 'innocent', pax: { path: '../evil' }, headerName: 'innocent' }],
    code: 'CDI_ARCHIVE_PATH_ESCAPE',
  },
  {
    what: 'a PAX path naming the canary absolutely',
    entries: ({ host }) => [{ name: 'innocent', pax: { path: host }, headerName: 'innocent' }],
    code: 'CDI_ARCHIVE_PATH_ESCAPE',
  },
  {
    what: 'a PAX path with a NUL byte',
    entries: () => [{ name: 'innocent', pax: { path: 'a\0/../../evil' }, headerName: 'innocent' }],
    code: 'CDI_ARCHIVE_INVALID',
  },
  {
    what: 'a PAX linkpath turning an innocent link into one to /',
    entries: () => [{ ...sym('l', 'ok'), pax: { linkpath: '/' } }],
    code: 'CDI_ARCHIVE_LINK_ESCAPE',
  },
  {
    what: 'a PAX linkpath turning a hard link toward the canary',
    entries: ({ host }) => [file('ok'), { ...hard('h', 'ok'), pax: { linkpath: host } }],
    code: 'CDI_ARCHIVE_PATH_ESCAPE',
  },
  {
    what: 'a GNU long name with ../',
    entries: () => [{ ...file(`../${'l'.repeat(120)}`), gnuLongName: true }],
    code: 'CDI_ARCHIVE_PATH_ESCAPE',
  },
  {
    what: 'a GNU long link: a hard link to the canary',
    entries: ({ host }) => [{ ...hard('h', `${host}${'/.'.repeat(60)}`), gnuLongLink: true }],
    code: 'CDI_ARCHIVE_PATH_ESCAPE',
  },
  {
    what: 'a GNU long link: a symbolic link climbing far',
    entries: () => [{ ...sym('l', '../'.repeat(60)), gnuLongLink: true }],
    code: 'CDI_ARCHIVE_LINK_ESCAPE',
  },
  // Duplicate entries.
  {
    what: 'a link replaced by a directory, then a file in it',
    entries: () => [sym('d', '..'), dir('d'), file('d/f', 'in')],
    tree: { d: 'dir', 'd/f': 'file:in' },
  },
  {
    what: 'a directory replaced by a link',
    entries: () => [dir('d'), file('d/f'), sym('d', '..')],
    code: 'CDI_ARCHIVE_UNSAFE_ENTRY',
  },
  {
    what: 'a file replaced by an escaping link',
    entries: () => [file('x'), sym('x', '../canary.txt')],
    code: 'CDI_ARCHIVE_LINK_ESCAPE',
  },
  {
    what: 'an escaping link replaced by a file',
    entries: () => [sym('x', '../../canary.txt'), file('x', 'safe')],
    tree: { x: 'file:safe' },
  },
  {
    what: 'a file listed twice (the later one wins)',
    entries: () => [file('f', 'first'), file('f', 'second')],
    tree: { f: 'file:second' },
  },
  // Modes and odd names.
  {
    what: 'setuid, setgid and sticky bits',
    entries: () => [
      { name: 'suid', body: '#!/bin/sh\n', mode: 0o4755 },
      { name: 'sgid', body: 'x', mode: 0o2750 },
      { name: 'sticky', body: 'x', mode: 0o1644 },
    ],
    tree: { sgid: 'file:x', sticky: 'file:x', suid: 'file:#!/bin/sh\n' },
    modes: { suid: 0o755, sgid: 0o750, sticky: 0o644 },
  },
  {
    what: 'a backslash name (a plain name on Linux)',
    entries: () => [file('..\\evil', 'plain')],
    tree: { '..\\evil': 'file:plain' },
  },
];

let base: string;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'cdi-hostile-'));
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

let rowNumber = 0;

async function codeOfExtraction(tar: Buffer, target: string): Promise<string | undefined> {
  try {
    await extractArchive({
      input: Readable.from([tar]),
      targetDir: target,
      signal: AbortSignal.timeout(30_000),
    });
    return undefined;
  } catch (err) {
    return errorCode(err) ?? String(err);
  }
}

describe(`${ROWS.length} hostile archives`, () => {
  it('are at least 30', () => {
    expect(ROWS.length).toBeGreaterThanOrEqual(30);
  });

  it.each(ROWS)('$what', async (row) => {
    const root = join(base, `row-${++rowNumber}`);
    const target = join(root, 'w', 'x', 'y', 'z', 'target');
    const host = join(root, 'host', 'canary.txt');
    await mkdir(join(root, 'host'), { recursive: true });
    await mkdir(target, { recursive: true });
    await writeFile(host, CANARY);
    await writeFile(join(root, 'w', 'canary.txt'), CANARY);
    await writeFile(join(root, 'w', 'x', 'y', 'z', 'canary.txt'), CANARY);
    const hostBefore = await stat(host);
    const outsideBefore = await snapshotTree(root, target);
    const depth = (await realpath(target)).split('/').length; // target's components + staging
    const tar = buildTar(row.entries({ host, hostRelative: host.slice(1), depth }));

    const code = await codeOfExtraction(tar, target);

    expect(await snapshotTree(root, target)).toEqual(outsideBefore);
    const hostAfter = await stat(host);
    expect([hostAfter.ino, hostAfter.nlink]).toEqual([hostBefore.ino, hostBefore.nlink]);
    expect(await readFile(host, 'utf8')).toBe(CANARY);
    if (row.code !== undefined) {
      expect(code).toBe(row.code);
      expect(await listTree(target)).toEqual({});
      return;
    }
    expect(code).toBeUndefined();
    expect(await listTree(target)).toEqual(row.tree);
    expect(await pathsResolvingOutside(target)).toEqual([]);
    expect((await inodesUnder(target)).has(hostAfter.ino)).toBe(false);
    for (const [name, mode] of Object.entries(row.modes ?? {})) {
      expect(((await stat(join(target, name))).mode & 0o7777).toString(8)).toBe(mode.toString(8));
    }
  });
});

/** A benign archive of every kind of entry the extractor keeps. */
const BENIGN: readonly TarEntry[] = [
  dir('./'),
  dir('./etc'),
  { name: './etc/app.conf', body: 'key=value\n', mode: 0o600 },
  { name: 'bin/run', body: '#!/bin/sh\necho ok\n', mode: 0o755 },
  file('empty', ''),
  dir('empty-dir'),
  file('data/deep/er/blob', 'y'.repeat(200_000)),
  sym('data/deep/er/up', '../../../etc/app.conf'),
  sym('config', 'etc/app.conf'),
  sym('lib', 'data/deep'),
  sym('through', 'lib/er/blob'),
  sym('dangling', 'not-in-archive'),
  sym('etc/self', '.'),
  hard('bin/run-again', 'bin/run'),
  hard('./etc/hard', 'bin/run-again'),
  file(`${'long/'.repeat(40)}name`, 'long'),
  file('dup', 'first'),
  file('dup', 'second'),
];

/** Names of the hard-link groups: which paths share an inode, as sorted lists. */
async function linkGroups(root: string, tree: TreeListing): Promise<string[][]> {
  const byInode = new Map<number, string[]>();
  for (const [rel, what] of Object.entries(tree)) {
    if (!what.startsWith('file:')) continue;
    const ino = (await lstat(join(root, rel))).ino;
    byInode.set(ino, [...(byInode.get(ino) ?? []), rel]);
  }
  return [...byInode.values()].map((g) => g.sort()).sort();
}

async function fileModes(root: string, tree: TreeListing): Promise<Record<string, string>> {
  const modes: Record<string, string> = {};
  for (const [rel, what] of Object.entries(tree)) {
    if (what.startsWith('file:'))
      modes[rel] = ((await lstat(join(root, rel))).mode & 0o777).toString(8);
  }
  return modes;
}

describe('a benign archive', () => {
  it('extracts exactly as GNU tar extracts it (names, types, contents, links, hard links, modes)', async () => {
    const root = join(base, 'benign');
    const tarFile = join(root, 'benign.tar');
    const ours = join(root, 'ours');
    const gnu = join(root, 'gnu');
    await mkdir(gnu, { recursive: true });
    const tar = buildTar(BENIGN);
    await writeFile(tarFile, tar);
    await promisify(execFile)('tar', ['-xf', tarFile, '-C', gnu, '--no-same-owner']);

    const result = await extractArchive({
      input: Readable.from([tar]),
      targetDir: ours,
      signal: AbortSignal.timeout(30_000),
    });

    const expected = await listTree(gnu);
    const tree = await listTree(ours);
    expect(tree).toEqual(expected);
    expect(tree['through']).toBe('link:lib/er/blob');
    expect(await linkGroups(ours, tree)).toEqual(await linkGroups(gnu, expected));
    expect(await fileModes(ours, tree)).toEqual(await fileModes(gnu, expected));
    expect(await readFile(join(ours, 'through'), 'utf8')).toBe('y'.repeat(200_000));
    expect(await pathsResolvingOutside(ours)).toEqual([]);
    const bodies = BENIGN.filter((e) => e.type === undefined).map((e) => Buffer.from(e.body ?? ''));
    expect(result).toEqual({
      entries: BENIGN.length,
      bytes: bodies.reduce((n, b) => n + b.length, 0),
    });
  });
});
