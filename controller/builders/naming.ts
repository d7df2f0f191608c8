// SPDX-License-Identifier: Apache-2.0
/**
 * Names of the objects the controller creates, as the Go CDI derives them (OpenShift's
 * `naming.GetName`): `base-suffix`, and when that is too long, the base is cut and a stable
 * FNV-32a hash of the full base keeps names unique.
 */

/** The longest name the Kubernetes API accepts for pods and claims. */
const MAX_NAME_LENGTH = 253;

/** FNV-32a of a string's UTF-8 bytes, as 8 lower-case hex digits. */
export function fnv32aHex(text: string): string {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/** `base-suffix`, shortened with a hash of `base` when longer than the API allows. */
export function joinName(base: string, suffix: string): string {
  const full = `${base}-${suffix}`;
  if (full.length <= MAX_NAME_LENGTH) return full;
  const keep = MAX_NAME_LENGTH - 10 - suffix.length;
  return `${base.slice(0, keep)}-${fnv32aHex(base)}-${suffix}`;
}

/** `<prefix>-<pvc>`, cut and suffixed with a hash of the full name when too long. */
function prefixedName(prefix: string, pvcName: string): string {
  const full = `${prefix}-${pvcName}`;
  if (full.length <= MAX_NAME_LENGTH) return full;
  return `${full.slice(0, MAX_NAME_LENGTH - 9)}-${fnv32aHex(full)}`;
}

/** The importer pod of a claim: `importer-<pvc>`. */
export function importerPodName(pvcName: string): string {
  return prefixedName('importer', pvcName);
}

/** The upload server pod of a claim: `cdi-upload-<pvc>`. */
export function uploadPodName(pvcName: string): string {
  return prefixedName('cdi-upload', pvcName);
}

/** The scratch claim of a claim: `<pvc>-scratch`. */
export function scratchPvcName(pvcName: string): string {
  return joinName(pvcName, 'scratch');
}
