// SPDX-License-Identifier: Apache-2.0
/**
 * In-archive names: how a tar member's name (or a hard link's target name) becomes the list of
 * path components it is created under, and the refusals every archive module raises. Names are
 * never rewritten into something else (GNU tar's stripping of `../` prefixes was itself the bug
 * of CVE-2016-6321); a name that would leave the tree is refused.
 */
import { CdiError, ErrorCodes, type ErrorCode } from '../../common/errors.js';

/** Linux NAME_MAX: the longest single component a filesystem accepts. */
export const MAX_COMPONENT_BYTES = 255;
/** Linux PATH_MAX less the terminating NUL: the longest in-archive name extracted. */
export const MAX_NAME_BYTES = 4095;

/** Names longer than this are shortened in messages (termination messages hold 4096 bytes). */
const QUOTED_NAME_CHARS = 160;

/** A name for a message: JSON-quoted, so control bytes are escaped, and shortened. */
export function quoteName(name: string): string {
  return JSON.stringify(
    name.length > QUOTED_NAME_CHARS ? `${name.slice(0, QUOTED_NAME_CHARS)}...` : name,
  );
}

/**
 * A refusal of one entry. Refusals are the archive's fault, so an HTTP edge (the upload server)
 * answers 400, as CDI does for bad client input.
 */
export function refuseEntry(code: ErrorCode, name: string, why: string): CdiError {
  return new CdiError(code, `refusing archive entry ${quoteName(name)}: ${why}`, {
    httpStatus: 400,
    details: { entry: name.slice(0, MAX_NAME_BYTES) },
  });
}

/**
 * Splits an in-archive name into its components, dropping empty and `.` components (`./a//b/`
 * is `a/b`). An empty result names the target directory itself. `role` words the refusal
 * ("name", "hard link target").
 *
 * @throws CdiError `CDI_ARCHIVE_PATH_ESCAPE` for an absolute name or a `..` component,
 *   `CDI_ARCHIVE_INVALID` for an empty name, a NUL byte or a name too long to create.
 */
export function splitEntryName(entry: string, raw: string, role = 'name'): readonly string[] {
  if (raw === '') throw refuseEntry(ErrorCodes.ArchiveInvalid, entry, `its ${role} is empty`);
  if (raw.includes('\0')) {
    throw refuseEntry(ErrorCodes.ArchiveInvalid, entry, `its ${role} contains a NUL byte`);
  }
  if (raw.startsWith('/')) {
    throw refuseEntry(ErrorCodes.ArchivePathEscape, entry, `its ${role} is an absolute path`);
  }
  const components = raw.split('/').filter((c) => c !== '' && c !== '.');
  if (components.includes('..')) {
    throw refuseEntry(
      ErrorCodes.ArchivePathEscape,
      entry,
      `its ${role} has a ".." component (names must stay inside the target directory)`,
    );
  }
  if (Buffer.byteLength(raw) > MAX_NAME_BYTES) {
    throw refuseEntry(
      ErrorCodes.ArchiveInvalid,
      entry,
      `its ${role} is longer than ${MAX_NAME_BYTES} bytes`,
    );
  }
  const long = components.find((c) => Buffer.byteLength(c) > MAX_COMPONENT_BYTES);
  if (long !== undefined) {
    throw refuseEntry(
      ErrorCodes.ArchiveInvalid,
      entry,
      `its ${role} has a component longer than ${MAX_COMPONENT_BYTES} bytes`,
    );
  }
  return components;
}
