// SPDX-License-Identifier: Apache-2.0
/**
 * What every verb receives from the process edge (cmd/cli.ts): env, streams, the logger, the one
 * AbortSignal (SIGINT/SIGTERM), the temp directory and proxy settings. No verb touches `process`.
 */
import type { Logger } from '../logger.js';

/** What a CLI verb gets from the process edge (cmd/cdi.ts): no verb touches `process` itself. */
export interface CommandContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WriteStream;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly tmpDir: string;
  readonly proxy: {
    readonly httpProxy?: string;
    readonly httpsProxy?: string;
    readonly noProxy?: string;
  };
}

/** Resolves when the signal aborts. */
export function waitForAbort(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
