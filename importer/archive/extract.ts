// SPDX-License-Identifier: Apache-2.0
import { createWriteStream } from 'node:fs';
import { link, lstat, mkdir, readdir, realpath, rename, rm, symlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as createExtract, type Header } from 'tar-stream';
import { CdiError, ErrorCodes, errorMessage, isCdiError } from '../../common/errors.js';

/** Permission bits kept from the archive: no setuid, setgid or sticky bits. */
const MODE_MASK = 0o777;

/** Options of {@link extractArchive}. */
export interface ExtractOptions {
  /** The decompressed tar stream. */
  readonly input: Readable;
  /** The directory that receives the entries (CDI: `/data`). */
  readonly targetDir: string;
  readonly signal: AbortSignal;
  /** Runs after the whole archive was read and before anything is moved into place (checksum). */
  readonly beforeCommit?: () => void;
}

/** What was extracted. */
export interface ExtractResult {
  readonly entries: number;
  readonly bytes: number;
}

/**
 * Extracts a tar into `targetDir` safely (CDI runs `tar -xvC /data --no-same-owner`). Entries are
 * first written to a private staging directory inside the target, so a failure part-way leaves
 * nothing behind, and they are moved into place only once the whole archive was read. Entries
 * that would escape (absolute paths, `..`, links pointing outside, writes through a symlink) and
 * device nodes or FIFOs are refused with `CDI_ARCHIVE_UNSAFE_ENTRY`.
 */
export async function extractArchive(options: ExtractOptions): Promise<ExtractResult> {
  await mkdir(options.targetDir, { recursive: true });
  const staging = join(options.targetDir, `.cdi-extract-${process.pid}-${Date.now()}`);
  await mkdir(staging);
  const result = { entries: 0, bytes: 0 };
  // The entry's own error is the cause; the pipeline may first see an upstream premature close.
  let entryError: Error | undefined;
  try {
    const extract = createExtract();
    extract.on('entry', (header, stream, next) => {
      writeEntry(staging, header, stream).then(
        (bytes) => {
          result.entries++;
          result.bytes += bytes;
          next();
        },
        (err: unknown) => {
          const error = err instanceof Error ? err : new Error(String(err));
          entryError ??= error;
          stream.resume();
          next(error);
        },
      );
    });
    await pipeline(options.input, extract, { signal: options.signal }).catch((err: unknown) => {
      if (entryError !== undefined) throw entryError;
      if (isCdiError(err)) throw err;
      throw new CdiError(
        ErrorCodes.ArchiveInvalid,
        `Unable to process data: invalid tar archive: ${errorMessage(err)}`,
        {
          cause: err,
        },
      );
    });
    if (result.entries === 0) {
      throw new CdiError(
        ErrorCodes.ArchiveInvalid,
        'Unable to process data: the archive holds no entries',
      );
    }
    options.beforeCommit?.();
    for (const name of await readdir(staging)) {
      const dest = join(options.targetDir, name);
      await rm(dest, { recursive: true, force: true });
      await rename(join(staging, name), dest);
    }
    return result;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Resolves an entry name inside `root`, refusing anything that would leave it. */
export function safeEntryPath(root: string, name: string): string {
  const cleaned = normalize(name.replace(/^\.\/+/, ''));
  if (name === '' || isAbsolute(name) || cleaned === '..' || cleaned.startsWith(`..${sep}`)) {
    throw unsafe(name, 'path leaves the target directory');
  }
  const full = resolve(root, cleaned);
  if (full !== root && !full.startsWith(root + sep))
    throw unsafe(name, 'path leaves the target directory');
  return full;
}

function unsafe(name: string, why: string): CdiError {
  return new CdiError(
    ErrorCodes.ArchiveUnsafeEntry,
    `refusing archive entry ${JSON.stringify(name)}: ${why}`,
  );
}

/** Refuses a write whose parent directory resolves outside `root` (a symlink planted earlier). */
async function assertParentInside(root: string, full: string, name: string): Promise<void> {
  const parent = dirname(full);
  await mkdir(parent, { recursive: true });
  const real = await realpath(parent);
  const realRoot = await realpath(root);
  if (real !== realRoot && !real.startsWith(realRoot + sep)) {
    throw unsafe(name, 'a parent directory is a link that leaves the target directory');
  }
  const existing = await lstat(full).catch(() => undefined);
  if (existing?.isSymbolicLink() === true)
    throw unsafe(name, 'it would write through a symbolic link');
}

/** An entry's body as tar-stream hands it over (a streamx Readable). */
interface EntryBody extends AsyncIterable<unknown> {
  resume(): unknown;
}

async function writeEntry(root: string, header: Header, stream: EntryBody): Promise<number> {
  const name = header.name;
  const full = safeEntryPath(root, name);
  const mode = header.mode & MODE_MASK;
  switch (header.type) {
    case 'directory':
      if (full === root) return 0;
      await assertParentInside(root, full, name);
      await mkdir(full, { recursive: true, mode: mode | 0o700 });
      stream.resume();
      return 0;
    case 'file':
    case 'contiguous-file': {
      await assertParentInside(root, full, name);
      await pipeline(stream, createWriteStream(full, { mode, flags: 'wx' }));
      return header.size;
    }
    case 'symlink': {
      const target = header.linkname;
      const resolved = resolve(dirname(full), target);
      if (isAbsolute(target) || relative(root, resolved).startsWith('..')) {
        throw unsafe(
          name,
          `symbolic link to ${JSON.stringify(target)} leaves the target directory`,
        );
      }
      await assertParentInside(root, full, name);
      await symlink(target, full);
      stream.resume();
      return 0;
    }
    case 'link': {
      const target = safeEntryPath(root, header.linkname);
      await assertParentInside(root, full, name);
      await link(target, full);
      stream.resume();
      return 0;
    }
    default:
      throw unsafe(
        name,
        `entries of type ${String(header.type)} (device nodes, FIFOs) are not extracted`,
      );
  }
}
