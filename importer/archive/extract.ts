// SPDX-License-Identifier: Apache-2.0
import { constants } from 'node:fs';
import { link, mkdir, mkdtemp, open, readdir, rename, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as createExtract, type Header } from 'tar-stream';
import { CdiError, ErrorCodes, errorCode, errorMessage, isCdiError } from '../../common/errors.js';
import { quoteName } from './entry-name.js';
import { TreePlan, type EntrySteps } from './tree-plan.js';

/** Directories the archive implies but does not list (as `mkdir -p`; the umask applies). */
const IMPLIED_DIR_MODE = 0o777;
/**
 * Regular files are created, never opened: O_EXCL fails on anything already there, a symbolic
 * link included, and O_NOFOLLOW says so once more for the last component.
 */
const CREATE_FILE_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

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
 * Extracts a tar into `targetDir` so that it cannot escape (CDI runs `tar -xvC /data
 * --no-same-owner`; docs/adr explains this design). Entries go to a fresh private staging
 * directory inside the target, which nothing but this function writes. {@link TreePlan} admits
 * each entry against a model of that tree: directories and files are created component by
 * component under real directories only, symbolic links are created after the whole archive was
 * read and only when they resolve inside the tree, and hard links only name regular files of the
 * same archive. So no path is ever resolved through a link the archive made. Only when every
 * entry was admitted and `beforeCommit` passed are the top-level names moved into the target;
 * any refusal (a `CDI_ARCHIVE_*` CdiError) leaves the target as it was.
 */
export async function extractArchive(options: ExtractOptions): Promise<ExtractResult> {
  await mkdir(options.targetDir, { recursive: true });
  // mkdtemp: a new name no one can predict, mode 0700.
  const staging = await mkdtemp(join(options.targetDir, '.cdi-extract-'));
  const plan = new TreePlan();
  const result = { entries: 0, bytes: 0 };
  // The entry's own error is the cause; the pipeline may first see an upstream premature close.
  let entryError: Error | undefined;
  try {
    const extract = createExtract();
    extract.on('entry', (header, stream, next) => {
      extractEntry(staging, plan, header, stream).then(
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
        { cause: err },
      );
    });
    if (result.entries === 0) {
      throw new CdiError(
        ErrorCodes.ArchiveInvalid,
        'Unable to process data: the archive holds no entries',
      );
    }
    options.beforeCommit?.();
    // Last, once every directory and file exists: nothing is created after a link is.
    for (const planned of plan.symlinks()) {
      await symlink(planned.target, inStaging(staging, planned.path));
    }
    await publish(staging, options.targetDir);
    return result;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Moves the staged top-level names into the target, replacing what was there by those names. */
async function publish(staging: string, targetDir: string): Promise<void> {
  for (const name of await readdir(staging)) {
    const dest = join(targetDir, name);
    // rm and rename act on `dest` itself: a link already there is removed, never followed.
    await rm(dest, { recursive: true, force: true });
    await rename(join(staging, name), dest);
  }
}

/** A plan path (components checked by the plan: no `..`, no empty or `.`) under the staging root. */
function inStaging(staging: string, path: string): string {
  return join(staging, ...path.split('/'));
}

/** An entry's body as tar-stream hands it over (a streamx Readable). */
interface EntryBody extends AsyncIterable<unknown> {
  resume(): unknown;
}

async function extractEntry(
  staging: string,
  plan: TreePlan,
  header: Header,
  body: EntryBody,
): Promise<number> {
  const steps = plan.admit(header);
  try {
    await applySteps(staging, steps, body);
    return steps.action.op === 'write' ? header.size : 0;
  } catch (err) {
    if (errorCode(err) === 'ENAMETOOLONG') {
      throw new CdiError(
        ErrorCodes.ArchiveInvalid,
        `refusing archive entry ${quoteName(header.name)}: its name is too long to create under ${staging}`,
        { cause: err, httpStatus: 400 },
      );
    }
    throw err;
  }
}

async function applySteps(staging: string, steps: EntrySteps, body: EntryBody): Promise<void> {
  // One component at a time, never recursive: mkdir fails on anything already there (a link too).
  for (const dir of steps.parents) await mkdir(inStaging(staging, dir), { mode: IMPLIED_DIR_MODE });
  if (steps.remove !== undefined) await unlink(inStaging(staging, steps.remove));
  const action = steps.action;
  switch (action.op) {
    case 'write': {
      const handle = await open(inStaging(staging, action.path), CREATE_FILE_FLAGS, action.mode);
      // The stream closes the handle when it finishes or fails.
      await pipeline(body, handle.createWriteStream());
      return;
    }
    case 'mkdir':
      await mkdir(inStaging(staging, action.path), { mode: action.mode });
      break;
    case 'link':
      // link(2) does not follow a link in its last component; the plan names a regular file.
      await link(inStaging(staging, action.existing), inStaging(staging, action.path));
      break;
    case 'none':
      break;
  }
  body.resume();
}
