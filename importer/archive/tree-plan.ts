// SPDX-License-Identifier: Apache-2.0
/**
 * The extraction plan: a model of the tree the archive builds, and for each entry the file-system
 * steps that create it (pure; {@link extractArchive} executes them). Every rule that keeps an
 * archive inside its target lives here:
 *
 * - names are split by {@link splitEntryName} (no absolute names, no `..`);
 * - every ancestor of an entry must be a directory of the model; one the archive declared as a
 *   symbolic link or a file refuses the entry, so nothing is ever created through a link;
 * - symbolic links are only recorded, and created after the whole archive was read, each one
 *   resolved against the complete model by {@link resolveLink};
 * - a hard link must name a regular file this archive extracted earlier, by its normalised name;
 * - devices, FIFOs and unknown entry types are refused (CDI runs tar as a non-root user, where
 *   device nodes fail too);
 * - a later entry of the same name replaces an earlier file or link, as tar does; a directory is
 *   never replaced by anything but a directory (merged), since its contents are already written.
 */
import { ErrorCodes } from '../../common/errors.js';
import { quoteName, refuseEntry, splitEntryName } from './entry-name.js';
import {
  newRoot,
  resolveLink,
  type DirectoryNode,
  type FileNode,
  type SymlinkNode,
  type TreeNode,
} from './link-containment.js';

/** Permission bits kept from the archive: no setuid, setgid or sticky bits. */
const MODE_MASK = 0o777;
/** Directories stay writable and searchable by the extractor, whatever mode the archive gives them. */
const DIR_OWNER_BITS = 0o700;

/** The header fields the plan reads (tar-stream's, whose `type` may be null for unknown types). */
export interface EntryHeader {
  readonly name: string;
  readonly type: string | null;
  readonly linkname?: string | null | undefined;
  readonly mode?: number | undefined;
}

/** How an entry's contents land (after {@link EntrySteps.parents} and {@link EntrySteps.remove}). */
export type EntryAction =
  | { readonly op: 'mkdir'; readonly path: string; readonly mode: number }
  | { readonly op: 'write'; readonly path: string; readonly mode: number }
  | { readonly op: 'link'; readonly path: string; readonly existing: string }
  /** Nothing now: a directory that exists, the root itself, or a link created at the end. */
  | { readonly op: 'none' };

/** The file-system steps of one entry, paths relative to the extraction root. */
export interface EntrySteps {
  /** Directories to create first, outermost first (each one component below the last). */
  readonly parents: readonly string[];
  /** A file or hard link of an earlier entry that this entry replaces, unlinked first. */
  readonly remove?: string;
  readonly action: EntryAction;
}

/** A symbolic link to create once every other entry exists. */
export interface PlannedSymlink {
  readonly path: string;
  readonly target: string;
}

const FILE_TYPES = new Set(['file', 'contiguous-file']);
/** Every regular file is the same node: the model stores one map entry per name, nothing more. */
const FILE: FileNode = Object.freeze({ kind: 'file' });

/** What the model holds at a path, without following links, or what stops the walk there. */
type Found = TreeNode | undefined | { readonly blockedBy: 'symlink' | 'file' };

/** The model of the tree an archive builds; {@link admit} each entry in order, then {@link symlinks}. */
export class TreePlan {
  readonly #root = newRoot();
  /** The recorded links, in declaration order, with their paths. */
  readonly #links = new Map<SymlinkNode, string>();

  /**
   * Admits the next entry: refuses it with a `CDI_ARCHIVE_*` CdiError, or records it in the model
   * and returns the steps that create it.
   */
  admit(header: EntryHeader): EntrySteps {
    const type = header.type ?? 'unknown';
    if (!FILE_TYPES.has(type) && !['directory', 'symlink', 'link'].includes(type)) {
      throw refuseEntry(
        ErrorCodes.ArchiveSpecialFile,
        header.name,
        `entries of type ${type} (device nodes, FIFOs and the like) are never extracted`,
      );
    }
    const parts = splitEntryName(header.name, header.name);
    const last = parts.at(-1);
    const name = last === undefined ? undefined : ownCopy(last);
    if (name === undefined) {
      if (type === 'directory') return { parents: [], action: { op: 'none' } };
      throw refuseEntry(
        ErrorCodes.ArchiveUnsafeEntry,
        header.name,
        'it names the target directory itself',
      );
    }
    const path = parts.join('/');
    const { dir, parents } = this.#parentOf(header.name, parts);
    const mode = (header.mode ?? 0o644) & MODE_MASK;
    if (type === 'directory') return this.#directory({ dir, name, path }, parents, mode);
    const steps = { parents, ...this.#replacing(header.name, { dir, name, path }) };
    if (type === 'symlink') {
      const link: SymlinkNode = { kind: 'symlink', target: header.linkname ?? '', parent: dir };
      dir.children.set(name, link);
      this.#links.set(link, path);
      return { ...steps, action: { op: 'none' } };
    }
    if (type === 'link') return { ...steps, action: this.#hardLink(header, { dir, name, path }) };
    dir.children.set(name, FILE);
    return { ...steps, action: { op: 'write', path, mode } };
  }

  /**
   * The symbolic links to create, in the order they were declared, once the whole archive was
   * admitted: each one resolved against the complete model.
   *
   * @throws CdiError `CDI_ARCHIVE_LINK_ESCAPE` for the first link that is absolute, leaves the
   *   tree at any step, or loops.
   */
  symlinks(): PlannedSymlink[] {
    const links: PlannedSymlink[] = [];
    for (const [link, path] of this.#links) {
      const resolved = resolveLink(link);
      if (!resolved.inside) {
        throw refuseEntry(
          ErrorCodes.ArchiveLinkEscape,
          path,
          `symbolic link to ${quoteName(link.target)}: ${resolved.why}`,
        );
      }
      links.push({ path, target: link.target });
    }
    return links;
  }

  /** Checks every ancestor and records the implied ones; returns the parent and those to create. */
  #parentOf(name: string, parts: readonly string[]): { dir: DirectoryNode; parents: string[] } {
    const parents: string[] = [];
    let dir = this.#root;
    for (let i = 0; i < parts.length - 1; i++) {
      const c = parts[i] ?? '';
      const node = dir.children.get(c);
      if (node === undefined) {
        const created: DirectoryNode = { kind: 'directory', parent: dir, children: new Map() };
        dir.children.set(ownCopy(c), created);
        parents.push(parts.slice(0, i + 1).join('/'));
        dir = created;
      } else if (node.kind === 'directory') {
        dir = node;
      } else {
        const what = node.kind === 'symlink' ? 'a symbolic link' : 'a file, not a directory';
        throw refuseEntry(
          ErrorCodes.ArchiveUnsafeEntry,
          name,
          `${quoteName(parts.slice(0, i + 1).join('/'))} is ${what} in this archive; nothing is extracted through it`,
        );
      }
    }
    return { dir, parents };
  }

  #directory(slot: Slot, parents: string[], mode: number): EntrySteps {
    const existing = slot.dir.children.get(slot.name);
    if (existing?.kind === 'directory') return { parents, action: { op: 'none' } };
    // A recorded link is not on disk yet: dropping it from the model is the whole replacement.
    if (existing?.kind === 'symlink') this.#links.delete(existing);
    slot.dir.children.set(slot.name, { kind: 'directory', parent: slot.dir, children: new Map() });
    const action = { op: 'mkdir', path: slot.path, mode: mode | DIR_OWNER_BITS } as const;
    return existing?.kind === 'file' ? { parents, remove: slot.path, action } : { parents, action };
  }

  /** A file, hard link or symbolic link replacing an earlier entry of the same name. */
  #replacing(name: string, slot: Slot): { remove?: string } {
    const existing = slot.dir.children.get(slot.name);
    if (existing?.kind === 'directory') {
      throw refuseEntry(
        ErrorCodes.ArchiveUnsafeEntry,
        name,
        'it would replace a directory extracted earlier from this archive',
      );
    }
    if (existing?.kind === 'symlink') this.#links.delete(existing);
    slot.dir.children.delete(slot.name);
    return existing?.kind === 'file' ? { remove: slot.path } : {};
  }

  #hardLink(header: EntryHeader, slot: Slot): EntryAction {
    const raw = header.linkname ?? '';
    const parts = splitEntryName(header.name, raw, 'hard link target');
    const existing = parts.join('/');
    const found = existing === slot.path ? undefined : this.#find(parts);
    if (found === undefined || !('kind' in found) || found.kind !== 'file') {
      throw refuseEntry(
        ErrorCodes.ArchiveHardLinkInvalid,
        header.name,
        `hard link to ${quoteName(raw)}, which is ${describeFound(found, existing === slot.path)}; hard links may only name regular files extracted earlier from the same archive`,
      );
    }
    slot.dir.children.set(slot.name, FILE);
    return { op: 'link', path: slot.path, existing };
  }

  /** The node at `parts`, never following a link. */
  #find(parts: readonly string[]): Found {
    let node: TreeNode = this.#root;
    for (const c of parts) {
      if (node.kind !== 'directory') return { blockedBy: node.kind };
      const next = node.children.get(c);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }
}

/** Where an entry lands: its parent directory in the model, its own name, its whole path. */
interface Slot {
  readonly dir: DirectoryNode;
  readonly name: string;
  readonly path: string;
}

function describeFound(found: Found, itself: boolean): string {
  if (itself) return 'the entry itself';
  if (found === undefined) return 'nothing extracted earlier from this archive';
  if ('blockedBy' in found) {
    return found.blockedBy === 'symlink' ? 'a name under a symbolic link' : 'a name under a file';
  }
  return found.kind === 'directory' ? 'a directory' : 'a symbolic link';
}

/**
 * A copy of a name that does not share memory with the string it was split from. V8 keeps a
 * substring as a slice of the whole (here the entry's full name, up to 4 KiB, or a PAX record);
 * the model keeps names for the whole extraction, and a copy lets the rest go (about 70 instead
 * of 117 bytes per entry for typical names).
 */
function ownCopy(name: string): string {
  return JSON.parse(JSON.stringify(name)) as string;
}
