// SPDX-License-Identifier: Apache-2.0
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  ContentTypes,
  ImporterEnv,
  SourceKinds,
  type ContentType,
  type SourceKind,
} from '../../common/contract.js';
import { CdiError, ErrorCodes, errorMessage } from '../../common/errors.js';
import { formatBytes, parseQuantity } from '../../common/quantity.js';
import { parseChecksum } from '../checksum/checksum.js';
import { parseDuration } from '../../common/duration.js';
import { DEFAULT_TRANSFER_LIMITS, type TransferLimits } from '../sources/http-limits.js';
import { runImport, type ImportResult, type ImportTarget } from '../pipeline/import.js';
import { quietRetryLogger } from '../progress/retry-line.js';
import { TerminalProgressBar } from '../progress/terminal-bar.js';
import { WrittenProbe } from '../progress/written-probe.js';
import { createSource, inferSourceKind } from '../sources/create-source.js';
import {
  boolFlag,
  parseArgs,
  stringFlag,
  stringsFlag,
  UsageError,
  type FlagSpec,
} from '../../common/cli/args.js';
import type { CommandContext } from '../../common/cli/context.js';

const IMPORT_FLAGS: FlagSpec = {
  source: 'string',
  dest: 'string',
  'source-kind': 'string',
  size: 'string',
  'content-type': 'string',
  checksum: 'string',
  'cert-dir': 'string',
  'insecure-tls': 'boolean',
  'access-key-id': 'string',
  'secret-key': 'string',
  'gcs-key': 'string',
  'gcs-endpoint': 'string',
  arch: 'string',
  'filesystem-overhead': 'string',
  preallocation: 'boolean',
  'scratch-dir': 'string',
  'extra-header': { type: 'string', multiple: true },
  retries: 'string',
  'idle-timeout': 'string',
  'stall-budget': 'string',
  json: 'boolean',
  quiet: { type: 'boolean', short: 'q' },
};

/** `cdi import --source URL|PATH --dest PATH [...]`: the flags are listed by `cdi import --help`. */
export async function importCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const args = parseArgs(argv, IMPORT_FLAGS, { max: 0 });
  const sourceUrl = stringFlag(args, 'source');
  const dest = stringFlag(args, 'dest');
  if (sourceUrl === undefined || dest === undefined) {
    throw new UsageError('--source and --dest are required');
  }
  const contentType = parseContentType(stringFlag(args, 'content-type'));
  const kind = inferSourceKind(sourceUrl, parseSourceKind(stringFlag(args, 'source-kind')));
  const sizeText = stringFlag(args, 'size');
  const checksumText = stringFlag(args, 'checksum');
  const overheadText = stringFlag(args, 'filesystem-overhead');
  const json = boolFlag(args, 'json');
  const certDir = stringFlag(args, 'cert-dir');
  const accessKeyId = stringFlag(args, 'access-key-id') ?? ctx.env['IMPORTER_ACCESS_KEY_ID'];
  const secretKey = stringFlag(args, 'secret-key') ?? ctx.env['IMPORTER_SECRET_KEY'];
  const extraHeaders = stringsFlag(args, 'extra-header');
  const gcsKey = stringFlag(args, 'gcs-key') ?? ctx.env[ImporterEnv.GoogleCredentialsFile];
  const gcsEndpoint = stringFlag(args, 'gcs-endpoint') ?? ctx.env[ImporterEnv.StorageEmulatorHost];
  const arch = stringFlag(args, 'arch');
  const retries = parseRetries(stringFlag(args, 'retries'));
  const target = await resolveTarget(dest, contentType);
  // Retries are one line on the terminal here; the pod keeps logging each as a warning.
  const retryLine = quietRetryLogger(ctx.logger, ctx.stderr);
  const source = await createSource({
    kind,
    url: sourceUrl,
    transport: {
      insecureTls: boolFlag(args, 'insecure-tls'),
      ...(certDir === undefined ? {} : { certDir }),
      ...(accessKeyId === undefined ? {} : { accessKeyId }),
      ...(secretKey === undefined ? {} : { secretKey }),
      ...(extraHeaders.length === 0 ? {} : { extraHeaders }),
      limits: transferLimits(stringFlag(args, 'idle-timeout'), stringFlag(args, 'stall-budget')),
    },
    proxy: ctx.proxy,
    gcs: {
      ...(gcsKey === undefined ? {} : { credentialsFile: gcsKey }),
      ...(gcsEndpoint === undefined ? {} : { endpoint: gcsEndpoint }),
    },
    logger: retryLine.logger,
    ...(retries === undefined ? {} : { maxRetries: retries }),
    ...(arch === undefined ? {} : { architecture: arch }),
  });
  const showBar = !json && !boolFlag(args, 'quiet') && ctx.stderr.isTTY;
  let probe: WrittenProbe | undefined;
  const bar = showBar ? new TerminalProgressBar(ctx.stderr, () => probe?.bytes) : undefined;
  if (bar !== undefined && target.kind === 'file')
    probe = new WrittenProbe(`${target.path}.part`, () => bar.redraw());
  let result: ImportResult;
  try {
    result = await runImport({
      source,
      sourceKind: kind,
      contentType,
      target,
      ...(sizeText === undefined ? {} : { requestedSize: parseQuantity(sizeText) }),
      filesystemOverhead: overheadText === undefined ? 0 : Number(overheadText),
      preallocation: boolFlag(args, 'preallocation'),
      ...(checksumText === undefined ? {} : { checksum: parseChecksum(checksumText) }),
      spillDir:
        stringFlag(args, 'scratch-dir') ??
        (target.kind === 'file' ? dirname(target.path) : ctx.tmpDir),
      signal: ctx.signal,
      logger: ctx.logger,
      ...(bar === undefined
        ? {}
        : {
            onProgress: (p) => {
              retryLine.clear();
              bar.update(p);
            },
          }),
    });
  } finally {
    probe?.stop();
    retryLine.clear();
    bar?.finish();
  }
  printResult(ctx, dest, result, json);
  return 0;
}

function printResult(ctx: CommandContext, dest: string, result: ImportResult, json: boolean): void {
  if (json) {
    ctx.stdout.write(`${JSON.stringify({ destination: dest, ...result })}\n`);
    return;
  }
  const wrappers = result.compressions.length > 0 ? ` (${result.compressions.join('+')})` : '';
  const size =
    result.format === 'archive'
      ? `${formatBytes(result.size)} extracted`
      : `raw ${formatBytes(result.size)}`;
  ctx.stdout.write(
    `imported ${result.format}${wrappers} into ${dest}: ${size}, ${formatBytes(result.bytesTransferred)} transferred, ` +
      `${formatBytes(result.dataBytesWritten)} written\n`,
  );
}

/** A directory for archives; a block device when `dest` is one; else a file. */
export async function resolveTarget(dest: string, contentType: ContentType): Promise<ImportTarget> {
  if (contentType === ContentTypes.Archive) return { kind: 'dir', path: dest };
  const st = await stat(dest).catch(() => undefined);
  if (st?.isBlockDevice() === true) return { kind: 'block', path: dest };
  if (st?.isDirectory() === true) {
    throw new CdiError(
      ErrorCodes.InvalidArgument,
      `--dest ${dest} is a directory; name the image file`,
    );
  }
  return { kind: 'file', path: dest };
}

/** `--retries N`: consecutive failed attempts tolerated by HTTP sources. */
function parseRetries(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 100)
    throw new UsageError(`--retries must be a whole number from 0 to 100, not ${value}`);
  return n;
}

/** `--idle-timeout` and `--stall-budget` (`60s`, `4m`, or seconds), defaults when absent. */
function transferLimits(idle: string | undefined, budget: string | undefined): TransferLimits {
  const parse = (flag: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    let ms: number;
    try {
      ms = parseDuration(text);
    } catch (err) {
      throw new UsageError(`--${flag}: ${errorMessage(err)}`);
    }
    if (ms <= 0) throw new UsageError(`--${flag} must be longer than 0`);
    return ms;
  };
  return {
    idleTimeoutMs: parse('idle-timeout', idle, DEFAULT_TRANSFER_LIMITS.idleTimeoutMs),
    stallBudgetMs: parse('stall-budget', budget, DEFAULT_TRANSFER_LIMITS.stallBudgetMs),
  };
}

function parseContentType(value: string | undefined): ContentType {
  if (value === undefined) return ContentTypes.Kubevirt;
  if (value === ContentTypes.Kubevirt || value === ContentTypes.Archive) return value;
  throw new UsageError(`--content-type must be kubevirt or archive, not ${value}`);
}

function parseSourceKind(value: string | undefined): SourceKind | undefined {
  if (value === undefined) return undefined;
  const allowed: readonly string[] = [
    SourceKinds.Http,
    SourceKinds.S3,
    SourceKinds.Gcs,
    SourceKinds.Registry,
    SourceKinds.File,
  ];
  if (allowed.includes(value)) return value as SourceKind;
  throw new UsageError(`--source-kind must be one of ${allowed.join(', ')}`);
}
