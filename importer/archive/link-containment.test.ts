// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { linkEscapeReason, MAX_LINK_EXPANSIONS, type TreeNode } from './link-containment.js';

/** A model from `path: 'dir' | 'file' | '->target'` rows. */
function model(rows: Readonly<Record<string, string>>): (p: string) => TreeNode | undefined {
  const nodes = new Map<string, TreeNode>();
  for (const [path, what] of Object.entries(rows)) {
    nodes.set(
      path,
      what === 'dir'
        ? { kind: 'directory' }
        : what === 'file'
          ? { kind: 'file' }
          : { kind: 'symlink', target: what.slice(2) },
    );
  }
  return (p) => nodes.get(p);
}

describe('linkEscapeReason', () => {
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
      what: `a chain of ${MAX_LINK_EXPANSIONS} links`,
      tree: Object.fromEntries(
        Array.from({ length: MAX_LINK_EXPANSIONS }, (_, i) => [`c${i}`, `->c${i + 1}`]),
      ),
      link: 'l',
      target: 'c0',
    },
  ])('accepts $what', ({ tree, link, target }) => {
    expect(linkEscapeReason(model(tree), link.split('/'), target)).toBeUndefined();
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
    { what: 'a link to itself', tree: { x: '->x' }, link: 'x', target: 'x', why: /loop/ },
    {
      what: `a chain of ${MAX_LINK_EXPANSIONS + 1} links`,
      tree: Object.fromEntries(
        Array.from({ length: MAX_LINK_EXPANSIONS + 1 }, (_, i) => [`c${i}`, `->c${i + 1}`]),
      ),
      link: 'l',
      target: 'c0',
      why: /loop/,
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
    expect(linkEscapeReason(model(tree), link.split('/'), target)).toMatch(why);
  });
});
