// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { MAX_LINK_EXPANSIONS } from './link-containment.js';
import { TreePlan, type EntryHeader } from './tree-plan.js';

/**
 * Why the link `link` → `target` is refused in a tree of `path: 'dir' | 'file' | '->target'`
 * rows, or undefined when every link of the tree stays inside.
 */
function refusal(
  rows: Readonly<Record<string, string>>,
  link: string,
  target: string,
): string | undefined {
  const plan = new TreePlan();
  const header = (name: string, what: string): EntryHeader =>
    what === 'dir'
      ? { name, type: 'directory' }
      : what === 'file'
        ? { name, type: 'file' }
        : { name, type: 'symlink', linkname: what.slice(2) };
  for (const [name, what] of Object.entries(rows)) plan.admit(header(name, what));
  plan.admit(header(link, `->${target}`));
  try {
    plan.symlinks();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** `count` links `c0` → `c1` → ... , the last one to a name the archive does not create. */
function chain(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`c${i}`, `->c${i + 1}`]));
}

describe('link resolution', () => {
  it.each([
    { what: 'a sibling file', tree: { f: 'file' }, link: 'l', target: 'f' },
    { what: 'the root itself', tree: {}, link: 'l', target: '.' },
    { what: 'the parent from a subdirectory', tree: { d: 'dir' }, link: 'd/l', target: '..' },
    { what: 'a dangling name inside', tree: {}, link: 'l', target: 'missing/file' },
    {
      what: 'a chain that stays inside',
      tree: { a: '->b', b: '->d', d: 'dir' },
      link: 'l',
      target: 'a',
    },
    {
      what: 'a link met on the way, resolved from its own directory',
      tree: { d: 'dir', 'd/e': 'dir', 'd/up': '->..' },
      link: 'd/e/l',
      target: '../up/d',
    },
    {
      what: 'components after a regular file (ENOTDIR, never resolved)',
      tree: { f: 'file' },
      link: 'l',
      target: 'f/../../../..',
    },
    {
      what: `a chain of ${MAX_LINK_EXPANSIONS} links, itself included`,
      tree: chain(MAX_LINK_EXPANSIONS - 1),
      link: 'l',
      target: 'c0',
    },
  ])('accepts $what', ({ tree, link, target }) => {
    expect(refusal(tree, link, target)).toBeUndefined();
  });

  it.each([
    { what: 'an absolute target', tree: {}, link: 'l', target: '/etc', why: /absolute/ },
    { what: 'the parent of the root', tree: {}, link: 'l', target: '..', why: /outside/ },
    {
      what: 'out and back in',
      tree: { d: 'dir' },
      link: 'd/l',
      target: '../../t/d',
      why: /outside/,
    },
    {
      what: 'a link named on the way that climbs (lexically inside)',
      tree: { d: 'dir', 'd/up': '->..' },
      link: 'x',
      target: 'd/up/..',
      why: /outside/,
    },
    {
      what: 'a chain of "." links each stepping up',
      tree: { a: '->.', b: '->a/..' },
      link: 'c',
      target: 'b',
      why: /outside/,
    },
    {
      what: 'an absolute link met on the way',
      tree: { a: '->/' },
      link: 'b',
      target: 'a/etc',
      why: /absolute/,
    },
    { what: 'a loop of two', tree: { x: '->y', y: '->x' }, link: 'x', target: 'y', why: /loop/ },
    {
      what: 'a link into a loop of others',
      tree: { x: '->y', y: '->x' },
      link: 'z',
      target: 'x/f',
      why: /loop/,
    },
    { what: 'a link to itself', tree: { x: '->x' }, link: 'x', target: 'x', why: /loop/ },
    {
      what: `a chain of ${MAX_LINK_EXPANSIONS + 1} links, itself included`,
      tree: chain(MAX_LINK_EXPANSIONS),
      link: 'l',
      target: 'c0',
      why: /within 40 links/,
    },
    {
      what: 'a step back out of a name the archive does not create',
      tree: {},
      link: 'l',
      target: 'missing/..',
      why: /does not create/,
    },
    { what: 'an empty target', tree: {}, link: 'l', target: '', why: /empty/ },
    { what: 'a NUL byte', tree: {}, link: 'l', target: 'a\0b', why: /NUL/ },
  ])('refuses $what', ({ tree, link, target, why }) => {
    expect(refusal(tree, link, target)).toMatch(why);
  });
});
