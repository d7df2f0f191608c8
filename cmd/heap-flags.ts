// SPDX-License-Identifier: Apache-2.0
/**
 * V8 heap flags a verb runs with. Node takes them only on its command line (or NODE_OPTIONS),
 * never once started, so `cdi` re-executes itself with them (`process.execve`, same pid) before
 * the verb loads.
 */

/** The flags each verb needs, by verb. */
export const VERB_HEAP_FLAGS: Readonly<Record<string, readonly string[]>> = {
  // The controller's heap is its informer caches: long-lived objects. V8's young generation grows
  // to 64 MiB during the start-up's allocation bursts (the first lists, the first reconciles) and
  // is not given back, which made up half of its RSS with 1,000 DataVolumes cached.
  controller: ['--max-semi-space-size=2'],
  // The upload proxy relays every byte through short-lived socket buffers: with a small young
  // generation they die in scavenges instead of piling up for a full collection (ADR 0036).
  uploadproxy: ['--max-semi-space-size=1'],
};

/** The flag's name: `--max-semi-space-size=2` → `--max-semi-space-size`. */
function flagName(flag: string): string {
  const eq = flag.indexOf('=');
  return (eq < 0 ? flag : flag.slice(0, eq)).replaceAll('_', '-');
}

/**
 * The heap flags `verb` wants that the process was not started with (on the command line or in
 * NODE_OPTIONS, where an operator's own value wins); empty when there is nothing to add.
 */
export function missingHeapFlags(
  verb: string | undefined,
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): string[] {
  const wanted = verb === undefined ? undefined : VERB_HEAP_FLAGS[verb];
  if (wanted === undefined) return [];
  const given = new Set(
    [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].filter((f) => f !== '').map(flagName),
  );
  return wanted.filter((f) => !given.has(flagName(f)));
}
