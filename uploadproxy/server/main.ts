// SPDX-License-Identifier: Apache-2.0
/**
 * `cdi uploadserver [--insecure]`: the upload pod's entry, configured by CDI's environment
 * (server-config.ts). Serves one upload, then writes CDI's termination message
 * (`{"message":"Upload Complete",...}`) and returns 0; a failure of an async upload's processing
 * writes the cause as one line and returns 1 (the pod restarts and the user may upload again).
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CLONE_PROGRESS_METRIC,
  PodPaths,
  TERMINATION_MESSAGE_MAX_BYTES,
  TerminationMessages,
  type TerminationMessage,
} from '../../common/contract.js';
import { CdiError, ErrorCodes, errorCode, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { ImportTarget } from '../../importer/pipeline/import.js';
import { createProgressMetric } from '../../importer/progress/metrics-server.js';
import { boolFlag, parseArgs } from '../../common/cli/args.js';
import type { CommandContext } from '../../common/cli/context.js';
import { loadUploadServerConfig, type UploadServerConfig } from './server-config.js';
import { startUploadServer, type UploadServerTls } from './upload-server.js';

/** See the module comment. */
export async function uploadServerMain(
  argv: readonly string[],
  ctx: CommandContext,
): Promise<number> {
  const { logger } = ctx;
  let config: UploadServerConfig;
  try {
    const args = parseArgs(argv, { insecure: 'boolean' }, { max: 0 });
    config = loadUploadServerConfig(ctx.env, boolFlag(args, 'insecure'));
  } catch (err) {
    logger.error(errorMessage(err), { code: errorCode(err) });
    ctx.stderr.write(`${errorMessage(err)}\n`);
    return 1;
  }
  try {
    const target = await uploadTarget(config);
    const scratch = await stat(config.scratchDir).then(
      (s) => s.isDirectory(),
      () => false,
    );
    const server = await startUploadServer({
      ...(config.tlsKeyFile === undefined ? {} : { tls: await loadTls(config) }),
      host: config.listen.host,
      port: config.listen.port,
      target,
      archiveDir: config.dataDir,
      ...(config.imageSize === undefined ? {} : { requestedSize: config.imageSize }),
      filesystemOverhead: config.filesystemOverhead,
      preallocation: config.preallocation,
      spillDir: scratch ? config.scratchDir : target.kind === 'block' ? ctx.tmpDir : config.dataDir,
      journal: config.journal,
      ...(config.ownerUid === undefined
        ? {}
        : {
            progress: createProgressMetric(config.ownerUid),
            cloneProgress: createProgressMetric(config.ownerUid, CLONE_PROGRESS_METRIC),
          }),
      logger,
    });
    logger.info('upload server listening', { url: server.url });
    const aborted = new Promise<never>((_resolve, reject) => {
      const onAbort = (): void =>
        reject(
          new CdiError(ErrorCodes.Aborted, 'upload server stopped before an upload completed'),
        );
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const result = await Promise.race([server.done, aborted]);
      // CDI's upload server says "Clone Complete" after a clone source's stream.
      const text = server.cloned
        ? TerminationMessages.CloneComplete
        : TerminationMessages.UploadComplete;
      const message: TerminationMessage = {
        scratchSpaceRequired: false,
        preallocationApplied: result.preallocationApplied,
        message: text,
      };
      await writeTerminationLog(config.terminationLog, JSON.stringify(message), logger);
      logger.info(text);
      return 0;
    } finally {
      await server.close();
    }
  } catch (err) {
    const line = errorMessage(err).split('\n')[0] ?? '';
    logger.error(line, { code: errorCode(err) });
    await writeTerminationLog(config.terminationLog, line, logger);
    return 1;
  }
}

async function loadTls(config: UploadServerConfig): Promise<UploadServerTls> {
  const read = async (file: string | undefined, what: string): Promise<string> => {
    try {
      return await readFile(file ?? '', 'utf8');
    } catch (err) {
      throw new CdiError(
        ErrorCodes.InvalidConfig,
        `cannot read ${what} ${file ?? ''}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  };
  return {
    keyPem: await read(config.tlsKeyFile, 'TLS key'),
    certPem: await read(config.tlsCertFile, 'TLS certificate'),
    clientCaPem: await read(config.clientCaFile, 'client CA'),
    clientName: config.clientName ?? '',
  };
}

/**
 * CDI's rules, with the sandbox's stand-ins (a plain file may stand for the block device): the
 * block device when it exists and `DESTINATION` is unset or names it; else `DESTINATION` or
 * `<data>/disk.img` as a file.
 */
async function uploadTarget(config: UploadServerConfig): Promise<ImportTarget> {
  if (config.destination === undefined || config.destination === config.blockDevice) {
    const st = await stat(config.blockDevice).catch(() => undefined);
    if (st !== undefined && !st.isDirectory()) return { kind: 'block', path: config.blockDevice };
  }
  return {
    kind: 'file',
    path: config.destination ?? path.join(config.dataDir, PodPaths.DiskImageName),
  };
}

async function writeTerminationLog(file: string, text: string, logger: Logger): Promise<void> {
  let bytes = Buffer.from(text);
  if (bytes.length > TERMINATION_MESSAGE_MAX_BYTES)
    bytes = bytes.subarray(0, TERMINATION_MESSAGE_MAX_BYTES);
  try {
    await writeFile(file, bytes);
  } catch (err) {
    logger.warn('cannot write the termination message', { path: file, error: errorMessage(err) });
  }
}
