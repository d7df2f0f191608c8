// SPDX-License-Identifier: Apache-2.0
/**
 * One container run as a local process: which program stands for the image's command (the
 * `cdi` entry from dist/, or a real shell), spawning it in its own process group with its log
 * file, stopping it with SIGTERM then SIGKILL after the grace period, and reading the
 * termination message the way the kubelet does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { TERMINATION_MESSAGE_MAX_BYTES } from '../../common/contract.js';

/** The program to run, or why the "image" cannot be run. */
export type Program =
  { readonly file: string; readonly args: string[] } | { readonly pullError: string };

/** CDI's image (any registry, tag or digest), whose entrypoint is `cdi`. */
const CDI_IMAGE = /(^|\/)cdi(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$/;

const SHELLS: ReadonlySet<string> = new Set(['sh', '/bin/sh', 'bash', '/bin/bash', '/usr/bin/env']);

/** Maps a container's command and args to a local program (see the module comment). */
export function resolveProgram(container: Record<string, unknown>, repoRoot: string): Program {
  const command = Array.isArray(container['command']) ? container['command'].map(String) : [];
  const args = Array.isArray(container['args']) ? container['args'].map(String) : [];
  // Without a command the image's entrypoint runs: `cdi` for CDI's image.
  const image = typeof container['image'] === 'string' ? container['image'] : '<none>';
  const entrypoint = command.length === 0 && CDI_IMAGE.test(image) ? ['cdi'] : command;
  const argv = [...entrypoint, ...args];
  const first = argv[0];
  if (first !== undefined && basename(first) === 'cdi') {
    return {
      file: process.execPath,
      args: [join(repoRoot, 'dist', 'cmd', 'cdi.js'), ...argv.slice(1)],
    };
  }
  if (first !== undefined && SHELLS.has(first)) return { file: first, args: argv.slice(1) };
  return {
    pullError: `Failed to pull image "${image}": the sandbox runs only containers whose command is cdi or sh`,
  };
}

/** How a process ended. */
export interface ExitInfo {
  readonly exitCode: number;
  readonly signal: string | undefined;
}

/** Process groups still running; killed if the sandbox's process exits without stopping them. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

/** Tracks a detached child so that it cannot outlive the sandbox's process. */
export function trackGroup(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  liveGroups.add(pid);
  child.once('exit', () => liveGroups.delete(pid));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous: a last SIGKILL to every group still alive.
    process.once('exit', () => {
      for (const group of liveGroups) {
        try {
          process.kill(-group, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    });
  }
}

/** Spawns the program; resolves with the child once it has started (or rejects). */
export async function startProcess(opts: {
  readonly program: { readonly file: string; readonly args: readonly string[] };
  readonly env: Record<string, string>;
  readonly cwd: string;
  readonly logFile: string;
}): Promise<ChildProcess> {
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(opts.program.file, [...opts.program.args], {
      env: opts.env,
      cwd: opts.cwd,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    trackGroup(child);
    return child;
  } finally {
    closeSync(fd);
  }
}

/** Resolves when the child exits. */
export function waitExit(child: ChildProcess): Promise<ExitInfo> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(exitInfo(child.exitCode, child.signalCode));
  }
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve(exitInfo(code, signal))),
  );
}

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  SIGKILL: 9,
  SIGTERM: 15,
  SIGINT: 2,
  SIGHUP: 1,
};

function exitInfo(code: number | null, signal: NodeJS.Signals | null): ExitInfo {
  if (code !== null) return { exitCode: code, signal: undefined };
  return { exitCode: 128 + (SIGNAL_NUMBERS[signal ?? ''] ?? 1), signal: signal ?? undefined };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** SIGTERM to the process group, SIGKILL after `graceMs`; resolves when it has exited. */
export async function stopProcess(child: ChildProcess, graceMs: number): Promise<ExitInfo> {
  const exited = waitExit(child);
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
    // Children the entry left behind go with the group.
    killGroup(child, 'SIGKILL');
  }
}

const FALLBACK_LOG_BYTES = 2048;
const FALLBACK_LOG_LINES = 80;

/** The termination message: the file (at most 4096 bytes), or the log tail when policy says so. */
export function readTerminationMessage(opts: {
  readonly file: string;
  readonly logFile: string;
  readonly policy: unknown;
  readonly exitCode: number;
}): string | undefined {
  let text: string;
  try {
    text = readFileSync(opts.file).subarray(0, TERMINATION_MESSAGE_MAX_BYTES).toString('utf8');
  } catch {
    text = '';
  }
  if (text === '' && opts.policy === 'FallbackToLogsOnError' && opts.exitCode !== 0) {
    try {
      const size = statSync(opts.logFile).size;
      const log = readFileSync(opts.logFile)
        .subarray(Math.max(0, size - FALLBACK_LOG_BYTES))
        .toString('utf8');
      text = log.split('\n').slice(-FALLBACK_LOG_LINES).join('\n');
    } catch {
      text = '';
    }
  }
  return text === '' ? undefined : text;
}
