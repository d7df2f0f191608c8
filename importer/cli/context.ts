// SPDX-License-Identifier: Apache-2.0
import type { Logger } from '../../common/logger.js';

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
