// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { errorCode } from '../../common/errors.js';
import { TreePlan, type EntryHeader, type EntrySteps } from './tree-plan.js';

const dir = (name: string, mode = 0o755): EntryHeader => ({ name, type: 'directory', mode });
const file = (name: string, mode = 0o644): EntryHeader => ({ name, type: 'file', mode });
const sym = (name: string, linkname: string): EntryHeader => ({ name, type: 'symlink', linkname });
const hard = (name: string, linkname: string): EntryHeader => ({ name, type: 'link', linkname });

function admitAll(entries: readonly EntryHeader[]): { plan: TreePlan; steps: EntrySteps[] } {
  const plan = new TreePlan();
  return { plan, steps: entries.map((e) => plan.admit(e)) };
}

function refusal(entries: readonly EntryHeader[]): string | undefined {
  try {
    admitAll(entries).plan.symlinks();
    return undefined;
  } catch (err) {
    return errorCode(err);
  }
}

describe('TreePlan steps', () => {
  it('creates implied parents one component at a time, outermost first', () => {
    const { steps } = admitAll([file('a/b/c/f')]);
    expect(steps[0]).toEqual({
      parents: ['a', 'a/b', 'a/b/c'],
      action: { op: 'write', path: 'a/b/c/f', mode: 0o644 },
    });
  });

  it('strips setuid, setgid and sticky bits and keeps directories writable by the owner', () => {
    const { steps } = admitAll([file('f', 0o6755), dir('d', 0o1500)]);
    expect(steps.map((s) => s.action)).toEqual([
      { op: 'write', path: 'f', mode: 0o755 },
      { op: 'mkdir', path: 'd', mode: 0o700 },
    ]);
  });

  it('defers symbolic links to the end and hands them over in order', () => {
    const { plan, steps } = admitAll([dir('d'), sym('d/l', '../f'), sym('l2', 'd'), file('f')]);
    expect(steps[1]?.action).toEqual({ op: 'none' });
    expect(plan.symlinks()).toEqual([
      { path: 'd/l', target: '../f' },
      { path: 'l2', target: 'd' },
    ]);
  });

  it.each([
    {
      what: 'a file replacing a file unlinks it first',
      entries: [file('f'), file('f')],
      last: { parents: [], remove: 'f', action: { op: 'write', path: 'f', mode: 0o644 } },
    },
    {
      what: 'a directory replacing a recorded link drops the link',
      entries: [sym('d', '..'), dir('d')],
      last: { parents: [], action: { op: 'mkdir', path: 'd', mode: 0o755 } },
    },
    {
      what: 'a directory replacing a file unlinks it',
      entries: [file('d'), dir('d')],
      last: { parents: [], remove: 'd', action: { op: 'mkdir', path: 'd', mode: 0o755 } },
    },
    {
      what: 'a directory listed again is merged',
      entries: [file('d/f'), dir('d')],
      last: { parents: [], action: { op: 'none' } },
    },
    {
      what: 'a hard link names the normalised path of a file',
      entries: [file('./d/f'), hard('h', 'd//./f')],
      last: { parents: [], action: { op: 'link', path: 'h', existing: 'd/f' } },
    },
    {
      what: 'a hard link to a hard link',
      entries: [file('f'), hard('h1', 'f'), hard('h2', 'h1')],
      last: { parents: [], action: { op: 'link', path: 'h2', existing: 'h1' } },
    },
    {
      what: 'the root directory entry',
      entries: [dir('./')],
      last: { parents: [], action: { op: 'none' } },
    },
  ])('$what', ({ entries, last }) => {
    expect(admitAll(entries).steps.at(-1)).toEqual(last);
  });
});

describe('TreePlan refusals', () => {
  it.each([
    {
      what: 'a write through a recorded link',
      entries: [sym('l', 'd'), dir('d'), file('l/f')],
      code: 'CDI_ARCHIVE_UNSAFE_ENTRY',
    },
    {
      what: 'a directory under a file',
      entries: [file('f'), file('f/g')],
      code: 'CDI_ARCHIVE_UNSAFE_ENTRY',
    },
    {
      what: 'a link replacing a directory',
      entries: [dir('d'), sym('d', '.')],
      code: 'CDI_ARCHIVE_UNSAFE_ENTRY',
    },
    {
      what: 'a file replacing a directory',
      entries: [file('d/f'), file('d')],
      code: 'CDI_ARCHIVE_UNSAFE_ENTRY',
    },
    { what: 'a file named "."', entries: [file('.')], code: 'CDI_ARCHIVE_UNSAFE_ENTRY' },
    {
      what: 'a hard link to a later file',
      entries: [hard('h', 'f'), file('f')],
      code: 'CDI_ARCHIVE_HARDLINK_INVALID',
    },
    {
      what: 'a hard link to a directory',
      entries: [dir('d'), hard('h', 'd')],
      code: 'CDI_ARCHIVE_HARDLINK_INVALID',
    },
    {
      what: 'a hard link to a link',
      entries: [file('f'), sym('s', 'f'), hard('h', 's')],
      code: 'CDI_ARCHIVE_HARDLINK_INVALID',
    },
    {
      what: 'a hard link through a link',
      entries: [file('d/f'), sym('s', 'd'), hard('h', 's/f')],
      code: 'CDI_ARCHIVE_HARDLINK_INVALID',
    },
    {
      what: 'a hard link to itself',
      entries: [file('h'), hard('h', 'h')],
      code: 'CDI_ARCHIVE_HARDLINK_INVALID',
    },
    {
      what: 'a hard link to an absolute path',
      entries: [hard('h', '/etc/passwd')],
      code: 'CDI_ARCHIVE_PATH_ESCAPE',
    },
    {
      what: 'a hard link with ".."',
      entries: [hard('h', '../f')],
      code: 'CDI_ARCHIVE_PATH_ESCAPE',
    },
    { what: 'a FIFO', entries: [{ name: 'p', type: 'fifo' }], code: 'CDI_ARCHIVE_SPECIAL_FILE' },
    {
      what: 'a character device',
      entries: [{ name: 'c', type: 'character-device' }],
      code: 'CDI_ARCHIVE_SPECIAL_FILE',
    },
    {
      what: 'an unknown type',
      entries: [{ name: 'u', type: null }],
      code: 'CDI_ARCHIVE_SPECIAL_FILE',
    },
    { what: 'an escaping link', entries: [sym('l', '..')], code: 'CDI_ARCHIVE_LINK_ESCAPE' },
    {
      what: 'a link chain that climbs',
      entries: [sym('a', '.'), sym('b', 'a/..')],
      code: 'CDI_ARCHIVE_LINK_ESCAPE',
    },
    {
      what: 'a link with an empty target',
      entries: [sym('l', '')],
      code: 'CDI_ARCHIVE_LINK_ESCAPE',
    },
  ])('$what: $code', ({ entries, code }) => {
    expect(refusal(entries)).toBe(code);
  });
});
