// SPDX-License-Identifier: Apache-2.0
/**
 * V8 heap flags and C library settings a verb runs with. Node takes V8 flags only on its command
 * line (or NODE_OPTIONS) and glibc reads its malloc settings from the environment only when the
 * process starts, so `cdi` re-executes itself with them (`process.execve`, same pid) before the
 * verb loads.
 */

/** The flags each verb needs, by verb. */
export const VERB_HEAP_FLAGS: Readonly<Record<string, readonly string[]>> = {
  controller: [
    // The controller's heap is its informer caches: long-lived objects. V8's young generation
    // grows to 64 MiB during the start-up's allocation bursts (the first lists, the first
    // reconciles) and is not given back, which made up half of its RSS with 1,000 DataVolumes
    // cached.
    '--max-semi-space-size=2',
    // Gives the controller V8's collector (`gc`): once idle after the start or a burst of work it
    // runs one memory-reducing collection (controller/memory-release.ts).
    '--expose-gc',
  ],
  // The upload proxy relays every byte through short-lived socket buffers: with a small young
  // generation they die in scavenges instead of piling up for a full collection (ADR 0036).
  uploadproxy: ['--max-semi-space-size=1'],
};

/** Environment variables each verb's process starts with unless already set, by verb. */
export const VERB_START_ENV: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  // glibc gives every thread that allocates its own malloc arena (up to 8 per core); V8's helper
  // threads (concurrent marking, compilation) each kept freed memory in theirs. The controller
  // runs one JavaScript thread: two arenas are enough, and its RSS is about 10 MiB lower.
  controller: { MALLOC_ARENA_MAX: '2' },
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

/**
 * The environment variables `verb` wants that the process was not started with (an operator's
 * own value, even an empty one, wins); empty when there is nothing to add.
 */
export function missingStartEnv(
  verb: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const wanted = verb === undefined ? undefined : VERB_START_ENV[verb];
  if (wanted === undefined) return {};
  return Object.fromEntries(Object.entries(wanted).filter(([name]) => env[name] === undefined));
}
