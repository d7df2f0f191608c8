// SPDX-License-Identifier: Apache-2.0
/**
 * Whether a symbolic link of the archive stays inside the extracted tree, decided on the model of
 * the tree (pure, no file system). The target is walked the way the kernel walks it: component by
 * component from the link's own directory, expanding every link of the archive met on the way, so
 * `l/..` means "the parent of wherever `l` points", never "the directory holding `l`". Plain
 * lexical normalisation gets exactly that wrong, and it is how a chain of individually harmless
 * links (`a` → `.`, `b` → `a/..`, ...) climbs out.
 */

/** Linux MAXSYMLINKS: how many links one resolution may expand before the kernel gives ELOOP. */
export const MAX_LINK_EXPANSIONS = 40;

/** What the tree holds at a path, as far as the archive made it. */
export type TreeNode =
  | { readonly kind: 'directory' }
  | { readonly kind: 'file' }
  | { readonly kind: 'symlink'; readonly target: string };

/** Looks a slash-joined relative path up in the model; `undefined`: the archive made nothing there. */
export type TreeLookup = (path: string) => TreeNode | undefined;

/** Where a walk stands: the components from the root, and which of them the archive made as directories. */
interface WalkPosition {
  readonly at: string[];
  readonly known: boolean[];
}

function componentsOf(target: string): string[] {
  return target.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Why the link at `linkPath` (components from the root) with `target` would not stay inside the
 * tree, or `undefined` when every step of its resolution stays inside.
 *
 * Strict on purpose: the walk may never step above the root, not even to come back; it may not
 * step back (`..`) out of a component the archive did not create (whatever is there later is
 * unknown); absolute targets, including those of links met on the way, are refused; and a walk
 * that needs more than {@link MAX_LINK_EXPANSIONS} expansions (a loop) is refused as unprovable.
 * A walk that reaches a regular file with components left ends there (ENOTDIR), inside.
 */
export function linkEscapeReason(
  lookup: TreeLookup,
  linkPath: readonly string[],
  target: string,
): string | undefined {
  if (target === '') return 'its target is empty';
  if (target.includes('\0')) return 'its target contains a NUL byte';
  if (target.startsWith('/')) return `its target ${JSON.stringify(target)} is an absolute path`;
  const dir = linkPath.slice(0, -1);
  const pos: WalkPosition = { at: [...dir], known: dir.map(() => true) };
  const pending = componentsOf(target);
  let expansions = 0;
  while (pending.length > 0) {
    const c = pending.shift() ?? '';
    if (c === '..') {
      const why = stepUp(pos);
      if (why !== undefined) return why;
      continue;
    }
    const path = [...pos.at, c].join('/');
    const node = lookup(path);
    if (node?.kind === 'symlink') {
      if (++expansions > MAX_LINK_EXPANSIONS) {
        return `it does not resolve within ${MAX_LINK_EXPANSIONS} links (a loop)`;
      }
      if (node.target.startsWith('/')) {
        return `it resolves through ${JSON.stringify(path)}, a link to an absolute path`;
      }
      pending.unshift(...componentsOf(node.target));
      continue;
    }
    if (node?.kind === 'file') return undefined;
    pos.at.push(c);
    pos.known.push(node?.kind === 'directory');
  }
  return undefined;
}

function stepUp(pos: WalkPosition): string | undefined {
  if (pos.at.length === 0) return 'it resolves outside the target directory';
  const left = pos.at.pop() ?? '';
  if (pos.known.pop() !== true) {
    return `it steps back out of ${JSON.stringify(left)}, which the archive does not create`;
  }
  return undefined;
}
