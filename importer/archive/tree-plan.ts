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
 *   checked against the complete model by {@link linkEscapeReason};
 * - a hard link must name a regular file this archive extracted earlier, by its normalised name;
 * - devices, FIFOs and unknown entry types are refused (CDI runs tar as a non-root user, where
 *   device nodes fail too);
 * - a later entry of the same name replaces an earlier file or link, as tar does; a directory is
 *   never replaced by anything but a directory (merged), since its contents are already written.
 */
import { ErrorCodes } from '../../common/errors.js';
import { quoteName, refuseEntry, splitEntryName } from './entry-name.js';
import { linkEscapeReason, type TreeNode } from './link-containment.js';

/** Permission bits kept from the archive: no setuid, setgid or sticky bits. */
const MODE_MASK = 0o777;
/** Directories stay writable by the extractor whatever the archive says (as before: tar -p as non-root). */
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
/** Shared nodes: the model holds one per path, so archives of a million entries stay near 100 MiB. */
const DIRECTORY: TreeNode = Object.freeze({ kind: 'directory' });
const FILE: TreeNode = Object.freeze({ kind: 'file' });

/** The model of the tree an archive builds; {@link admit} each entry in order, then {@link symlinks}. */
export class TreePlan {
  readonly #nodes = new Map<string, TreeNode>();

  /** What the model holds at a slash-joined relative path. */
  lookup(path: string): TreeNode | undefined {
    return this.#nodes.get(path);
  }

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
    if (parts.length === 0) {
      if (type === 'directory') return { parents: [], action: { op: 'none' } };
      throw refuseEntry(
        ErrorCodes.ArchiveUnsafeEntry,
        header.name,
        'it names the target directory itself',
      );
    }
    const path = parts.join('/');
    const parents = this.#parentsOf(header.name, parts);
    const mode = (header.mode ?? 0o644) & MODE_MASK;
    if (type === 'directory') return this.#directory(path, parents, mode);
    const steps = { parents, ...this.#replacing(header.name, path) };
    if (type === 'symlink') {
      this.#nodes.set(path, { kind: 'symlink', target: header.linkname ?? '' });
      return { ...steps, action: { op: 'none' } };
    }
    if (type === 'link') return { ...steps, action: this.#hardLink(header, path) };
    this.#nodes.set(path, FILE);
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
    const lookup = (p: string): TreeNode | undefined => this.#nodes.get(p);
    for (const [path, node] of this.#nodes) {
      if (node.kind !== 'symlink') continue;
      const why = linkEscapeReason(lookup, path.split('/'), node.target);
      if (why !== undefined) {
        throw refuseEntry(
          ErrorCodes.ArchiveLinkEscape,
          path,
          `symbolic link to ${quoteName(node.target)}: ${why}`,
        );
      }
      links.push({ path, target: node.target });
    }
    return links;
  }

  /** Checks every ancestor and records the implied ones; returns those to create. */
  #parentsOf(name: string, parts: readonly string[]): string[] {
    const created: string[] = [];
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join('/');
      const node = this.#nodes.get(ancestor);
      if (node === undefined) {
        this.#nodes.set(ancestor, DIRECTORY);
        created.push(ancestor);
      } else if (node.kind !== 'directory') {
        const what = node.kind === 'symlink' ? 'a symbolic link' : 'a file, not a directory';
        throw refuseEntry(
          ErrorCodes.ArchiveUnsafeEntry,
          name,
          `${quoteName(ancestor)} is ${what} in this archive; nothing is extracted through it`,
        );
      }
    }
    return created;
  }

  #directory(path: string, parents: string[], mode: number): EntrySteps {
    const existing = this.#nodes.get(path);
    if (existing?.kind === 'directory') return { parents, action: { op: 'none' } };
    this.#nodes.set(path, DIRECTORY);
    const action = { op: 'mkdir', path, mode: mode | DIR_OWNER_BITS } as const;
    // A recorded link is not on disk yet: dropping it from the model is the whole replacement.
    return existing?.kind === 'file' ? { parents, remove: path, action } : { parents, action };
  }

  /** A file, hard link or symbolic link replacing an earlier entry of the same name. */
  #replacing(name: string, path: string): { remove?: string } {
    const existing = this.#nodes.get(path);
    if (existing?.kind === 'directory') {
      throw refuseEntry(
        ErrorCodes.ArchiveUnsafeEntry,
        name,
        'it would replace a directory extracted earlier from this archive',
      );
    }
    this.#nodes.delete(path);
    return existing?.kind === 'file' ? { remove: path } : {};
  }

  #hardLink(header: EntryHeader, path: string): EntryAction {
    const raw = header.linkname ?? '';
    const existing = splitEntryName(header.name, raw, 'hard link target').join('/');
    const node = this.#nodes.get(existing);
    if (node?.kind !== 'file' || existing === path) {
      const found =
        existing === path
          ? 'the entry itself'
          : node === undefined
            ? 'nothing extracted earlier from this archive'
            : node.kind === 'directory'
              ? 'a directory'
              : 'a symbolic link';
      throw refuseEntry(
        ErrorCodes.ArchiveHardLinkInvalid,
        header.name,
        `hard link to ${quoteName(raw)}, which is ${found}; hard links may only name regular files extracted earlier from the same archive`,
      );
    }
    this.#nodes.set(path, FILE);
    return { op: 'link', path, existing };
  }
}
