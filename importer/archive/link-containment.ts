// SPDX-License-Identifier: Apache-2.0
/**
 * The model of the tree an archive builds, and whether a symbolic link of it stays inside (pure,
 * no file system). A target is walked the way the kernel walks it: component by component from
 * the link's own directory, following every link of the archive met on the way, so `l/..` means
 * "the parent of wherever `l` points", never "the directory holding `l`". Plain lexical
 * normalisation gets exactly that wrong, and it is how a chain of individually harmless links
 * (`a` → `.`, `b` → `a/..`, ...) climbs out.
 *
 * Nodes point at their parent directory, so `..` is one step, and each link is resolved once and
 * remembered: checking every link of an archive costs time linear in the bytes of their targets,
 * whatever chains, depths or repetitions a hostile archive builds.
 */

/** Linux MAXSYMLINKS: how many links one resolution may follow before the kernel gives ELOOP. */
export const MAX_LINK_EXPANSIONS = 40;

/** A directory of the model; the root has no parent. */
export interface DirectoryNode {
  readonly kind: 'directory';
  readonly parent: DirectoryNode | undefined;
  readonly children: Map<string, TreeNode>;
}

/** A regular file (or a hard link to one). */
export interface FileNode {
  readonly kind: 'file';
}

/** A symbolic link as the archive declared it; {@link resolveLink} fills in `resolution`. */
export interface SymlinkNode {
  readonly kind: 'symlink';
  readonly target: string;
  /** The directory holding the link, where its target is resolved from. */
  readonly parent: DirectoryNode;
  resolution?: LinkResolution | 'resolving';
}

export type TreeNode = DirectoryNode | FileNode | SymlinkNode;

/**
 * Where a walk ends inside the tree: a directory of the model, a regular file (components after
 * it fail with ENOTDIR), or a name the archive does not create. `expansions` counts the links
 * followed, as the kernel counts them. Or why it does not stay inside.
 */
export type LinkResolution =
  | {
      readonly inside: true;
      readonly at: DirectoryNode | 'file' | 'absent';
      readonly expansions: number;
    }
  | { readonly inside: false; readonly why: string };

/** A new, empty root directory. */
export function newRoot(): DirectoryNode {
  return { kind: 'directory', parent: undefined, children: new Map() };
}

const THROUGH = 'it resolves through ';

function componentsOf(target: string): string[] {
  return target.split('/').filter((c) => c !== '' && c !== '.');
}

function outside(why: string): LinkResolution {
  return { inside: false, why };
}

/**
 * Resolves `link` against the model, once (the result is kept on the node).
 *
 * Strict on purpose: a walk may never step above the root, not even to come back; it may not
 * step back (`..`) out of a name the archive does not create (whatever is there later is
 * unknown); an absolute target, its own or one met on the way, is refused; and a walk that
 * follows more than {@link MAX_LINK_EXPANSIONS} links, or comes back to a link it is resolving
 * (a loop), is refused as unprovable.
 */
export function resolveLink(link: SymlinkNode, nesting = 0): LinkResolution {
  if (link.resolution === 'resolving') return outside('it loops back to itself');
  if (link.resolution !== undefined) return link.resolution;
  // Not remembered: deeper than the limit says nothing of this link, only of the chain above it.
  if (nesting > MAX_LINK_EXPANSIONS) return outside(tooManyLinks());
  link.resolution = 'resolving';
  let result = walk(link.parent, link.target, nesting);
  if (result.inside) {
    result = { ...result, expansions: result.expansions + 1 };
    if (result.expansions > MAX_LINK_EXPANSIONS) result = outside(tooManyLinks());
  }
  link.resolution = result;
  return result;
}

function tooManyLinks(): string {
  return `it does not resolve within ${MAX_LINK_EXPANSIONS} links`;
}

function walk(start: DirectoryNode, target: string, nesting: number): LinkResolution {
  if (target === '') return outside('its target is empty');
  if (target.includes('\0')) return outside('its target contains a NUL byte');
  if (target.startsWith('/')) return outside(`its target ${JSON.stringify(target)} is absolute`);
  const parts = componentsOf(target);
  let node = start;
  let expansions = 0;
  for (let i = 0; i < parts.length; i++) {
    const c = parts[i] ?? '';
    if (c === '..') {
      if (node.parent === undefined) return outside('it resolves outside the target directory');
      node = node.parent;
      continue;
    }
    const step = stepInto(node, c, nesting);
    if (!step.inside) return step;
    expansions += step.expansions;
    if (expansions > MAX_LINK_EXPANSIONS) return outside(tooManyLinks());
    const at = step.at;
    if (at === 'file') return { inside: true, at, expansions };
    if (at === 'absent') return afterAbsent(c, parts.slice(i + 1), expansions);
    node = at;
  }
  return { inside: true, at: node, expansions };
}

/** One named step from `dir`: where it lands, following a link of the archive if it is one. */
function stepInto(dir: DirectoryNode, name: string, nesting: number): LinkResolution {
  const child = dir.children.get(name);
  if (child === undefined) return { inside: true, at: 'absent', expansions: 0 };
  if (child.kind === 'file') return { inside: true, at: 'file', expansions: 0 };
  if (child.kind === 'directory') return { inside: true, at: child, expansions: 0 };
  const r = resolveLink(child, nesting + 1);
  if (r.inside || r.why.startsWith(THROUGH)) return r;
  return outside(`${THROUGH}${JSON.stringify(name)}, where ${r.why}`);
}

/** Below a name the archive does not create, nothing exists in the model: only `..` matters. */
function afterAbsent(name: string, rest: readonly string[], expansions: number): LinkResolution {
  if (rest.includes('..')) {
    return outside(
      `it steps back (..) out of a name the archive does not create, below ${JSON.stringify(name)}`,
    );
  }
  return { inside: true, at: 'absent', expansions };
}
