// SPDX-License-Identifier: Apache-2.0
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline as linkStreams } from 'node:stream';
import {
  CLONE_PROGRESS_METRIC,
  ContentTypes,
  PodPaths,
  PullMethods,
  SourceKinds,
  TERMINATION_MESSAGE_MAX_BYTES,
  TerminationMessages,
  type TerminationMessage,
} from '../../common/contract.js';
import { CdiError, ErrorCodes, errorCode, errorMessage, wrapError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { loadImporterConfig, type ImporterConfig } from '../config.js';
import { runImport, type ImportTarget } from '../pipeline/import.js';
import { writeRawStream } from '../pipeline/raw.js';
import { ByteCounter, ProgressTracker } from '../progress/byte-counter.js';
import { PvcSource } from '../sources/pvc.js';
import { startMetricsServer, type MetricsServer } from '../progress/metrics-server.js';
import { RawTarget } from '../sink/raw-target.js';
import { createSource } from '../sources/create-source.js';
import { serverLabels, touchDoneFile, waitForServer } from './node-pull.js';
import { parseArgs } from '../../common/cli/args.js';
import type { CommandContext } from '../../common/cli/context.js';

/**
 * `cdi importer`: the importer pod's entry, configured by CDI's environment variables. Writes
 * CDI's JSON termination message and returns 0 on success; on failure writes the cause as one
 * plain line (what CDI's controller shows in the Running condition) and returns 1. This is the
 * process's one error edge: the caller prints nothing more.
 */
export async function importerPodCommand(
  argv: readonly string[],
  ctx: CommandContext,
): Promise<number> {
  // Configured by the environment alone; anything on the command line is a mistake (exit 2).
  parseArgs(argv, {}, { max: 0 });
  const { logger } = ctx;
  let config: ImporterConfig;
  try {
    config = loadImporterConfig(ctx.env);
  } catch (err) {
    await writeTerminationLog(
      ctx.env['CDI_TERMINATION_LOG'] ?? PodPaths.TerminationLog,
      errorMessage(err),
      logger,
    );
    logger.error(errorMessage(err), { code: errorCode(err) });
    return 1;
  }
  let metrics: MetricsServer | undefined;
  try {
    if (config.metrics !== undefined && config.source !== SourceKinds.None) {
      metrics = await startMetricsServer({
        ...config.metrics,
        ownerUid: config.ownerUid,
        // Clones count under CDI's clone counter, as its dashboards and alerts expect.
        ...(config.source === SourceKinds.Pvc ? { metric: CLONE_PROGRESS_METRIC } : {}),
        logger,
      });
    }
    const endpoint =
      config.readyFile === undefined
        ? config.endpoint
        : await waitForServer(config.readyFile, config.endpoint, ctx.signal);
    const imported = await runPodImport({ ...config, endpoint }, ctx, metrics);
    const message =
      config.pullMethod === PullMethods.Node && config.source === SourceKinds.Http
        ? withLabels(imported, await serverLabels(endpoint, logger))
        : imported;
    if (config.doneFile !== undefined) await touchDoneFile(config.doneFile);
    await writeTerminationLog(config.terminationLog, JSON.stringify(message), logger);
    logger.info(message.message ?? TerminationMessages.ImportComplete);
    return 0;
  } catch (err) {
    const line = failureLine(err);
    logger.error(line, { code: errorCode(err) });
    await writeTerminationLog(config.terminationLog, line, logger);
    return 1;
  } finally {
    await metrics?.close();
  }
}

function withLabels(
  message: TerminationMessage,
  labels: Record<string, string>,
): TerminationMessage {
  const all = { ...message.labels, ...labels };
  return Object.keys(all).length === 0 ? message : { ...message, labels: all };
}

async function runPodImport(
  config: ImporterConfig,
  ctx: CommandContext,
  metrics: MetricsServer | undefined,
): Promise<TerminationMessage> {
  const target = await podTarget(config);
  if (config.source === SourceKinds.None) return createBlankImage(config, target, ctx.logger);
  if (config.source === SourceKinds.Pvc) return copyClone(config, target, ctx, metrics);
  const source = await createSource({
    kind: config.source,
    url: config.endpoint,
    transport: {
      insecureTls: config.insecureTls,
      extraHeaders: [...config.extraHeaders, ...(await readSecretHeaders(config.extraHeadersDir))],
      ...(config.certDir === undefined ? {} : { certDir: config.certDir }),
      ...(config.accessKeyId === undefined ? {} : { accessKeyId: config.accessKeyId }),
      ...(config.secretKey === undefined ? {} : { secretKey: config.secretKey }),
      limits: config.limits,
    },
    proxy: config.proxy,
    gcs: {
      ...(config.gcsCredentialsFile === undefined
        ? {}
        : { credentialsFile: config.gcsCredentialsFile }),
      ...(config.gcsEndpoint === undefined ? {} : { endpoint: config.gcsEndpoint }),
    },
    pullMethod: config.pullMethod,
    logger: ctx.logger,
    ...(config.architecture === undefined ? {} : { architecture: config.architecture }),
  });
  const scratchExists = await stat(config.scratchDir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  const result = await runImport({
    source,
    sourceKind: config.source,
    contentType: config.contentType,
    target,
    ...(config.imageSize === undefined ? {} : { requestedSize: config.imageSize }),
    filesystemOverhead: config.filesystemOverhead,
    preallocation: config.preallocation,
    ...(config.checksum === undefined ? {} : { checksum: config.checksum }),
    spillDir: scratchExists
      ? config.scratchDir
      : target.kind === 'block'
        ? ctx.tmpDir
        : config.dataDir,
    signal: ctx.signal,
    logger: ctx.logger,
    onProgress: (p) => {
      if (p.percent !== undefined) metrics?.setProgress(p.percent);
    },
  });
  metrics?.setProgress(100);
  ctx.logger.info('import finished', { ...result });
  return {
    scratchSpaceRequired: false,
    preallocationApplied: result.preallocationApplied,
    message: TerminationMessages.ImportComplete,
    ...(Object.keys(result.labels).length === 0 ? {} : { labels: result.labels }),
  };
}

/** `/data` for archives, the block device when it exists, else `/data/disk.img` (CDI's rules). */
async function podTarget(config: ImporterConfig): Promise<ImportTarget> {
  if (config.contentType === ContentTypes.Archive) return { kind: 'dir', path: config.dataDir };
  const block = await stat(config.blockDevice).catch(() => undefined);
  if (block !== undefined && !block.isDirectory())
    return { kind: 'block', path: config.blockDevice };
  return { kind: 'file', path: join(config.dataDir, PodPaths.DiskImageName) };
}

/** The pod's raw target with CDI's size rules (block targets carry no filesystem overhead). */
function openRawTarget(
  config: ImporterConfig,
  target: ImportTarget & { readonly kind: 'file' | 'block' },
  logger: Logger,
): Promise<RawTarget> {
  return RawTarget.open({
    path: target.path,
    kind: target.kind,
    ...(config.imageSize === undefined ? {} : { requestedSize: config.imageSize }),
    overhead: target.kind === 'block' ? 0 : config.filesystemOverhead,
    preallocation: config.preallocation,
    logger,
  });
}

/** A blank DataVolume: a sparse raw image of the usable size (CDI `qemu-img create -f raw`). */
async function createBlankImage(
  config: ImporterConfig,
  target: ImportTarget,
  logger: Logger,
): Promise<TerminationMessage> {
  if (target.kind === 'dir') {
    throw new CdiError(
      ErrorCodes.InvalidArgument,
      'Cannot create empty disk with content type archive',
    );
  }
  const raw = await openRawTarget(config, target, logger);
  try {
    const finished = await raw.finish(0);
    return {
      scratchSpaceRequired: false,
      preallocationApplied: finished.preallocationApplied,
      message: TerminationMessages.ImportComplete,
    };
  } catch (err) {
    await raw.abort();
    throw wrapError(err, 'Unable to create blank image');
  }
}

/**
 * A host-assisted clone: the source claim's image copied byte for byte into the target. It does
 * not go through {@link runImport}'s format sniffing: a clone copies a disk, and a raw disk whose
 * first bytes happen to look like qcow2 or gzip must not be "converted" (ADR 0013). The raw
 * writer still skips zero runs (sparse target), and the size check ("DataVolume too small to
 * contain image" in the controller), resize and preallocation are the import's.
 */
async function copyClone(
  config: ImporterConfig,
  target: ImportTarget,
  ctx: CommandContext,
  metrics: MetricsServer | undefined,
): Promise<TerminationMessage> {
  const { logger, signal } = ctx;
  if (target.kind === 'dir') {
    throw new CdiError(ErrorCodes.InvalidArgument, 'content type archive cannot be cloned');
  }
  const source = new PvcSource({ path: config.endpoint });
  try {
    const info = await source.info(signal).catch((err: unknown) => {
      throw wrapError(err, `Unable to connect to ${SourceKinds.Pvc} data source`);
    });
    logger.info('clone source opened', { source: info.displayName, length: info.length });
    const raw = await openRawTarget(config, target, logger);
    try {
      if (info.length !== undefined) raw.checkFits(info.length);
      const tracker = new ProgressTracker(
        (p) => {
          if (p.percent !== undefined) metrics?.setProgress(p.percent);
        },
        info.length === undefined ? {} : { total: info.length },
      );
      const counter = new ByteCounter((n) => tracker.add(n));
      // Linked with the callback form: a read error destroys the counter, which the awaited
      // pipeline in writeRawStream then reports.
      const input = linkStreams(await source.stream(signal), counter, () => undefined);
      const written = await writeRawStream({ input, target: raw, signal });
      const finished = await raw.finish(written.size);
      tracker.complete();
      logger.info('clone finished', { ...written, ...finished });
      return {
        scratchSpaceRequired: false,
        preallocationApplied: finished.preallocationApplied,
        message: TerminationMessages.CloneComplete,
      };
    } catch (err) {
      await raw.abort();
      throw wrapError(err, 'Unable to process data');
    }
  } finally {
    await source.close();
  }
}

/** The first line of the cause: what CDI's controller shows in the Running condition. */
function failureLine(err: unknown): string {
  return errorMessage(err).split('\n')[0] ?? '';
}

/**
 * CDI mounts each `secretExtraHeaders` Secret at `/extraheaders/<i>`; every key file holds one
 * `Name: value` header. Missing directories mean none were configured.
 */
async function readSecretHeaders(dir: string): Promise<string[]> {
  const headers: string[] = [];
  const mounts = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const mount of mounts
    .filter((m) => m.isDirectory())
    .sort((a, b) => a.name.localeCompare(b.name))) {
    const files = await readdir(join(dir, mount.name), { withFileTypes: true });
    // Secret volumes hold `..data` links and dot-directories next to the key files.
    for (const file of files
      .filter((f) => !f.name.startsWith('.'))
      .sort((a, b) => a.name.localeCompare(b.name))) {
      headers.push((await readFile(join(dir, mount.name, file.name), 'utf8')).trim());
    }
  }
  return headers;
}

async function writeTerminationLog(path: string, text: string, logger: Logger): Promise<void> {
  let bytes = Buffer.from(text);
  if (bytes.length > TERMINATION_MESSAGE_MAX_BYTES)
    bytes = bytes.subarray(0, TERMINATION_MESSAGE_MAX_BYTES);
  try {
    await writeFile(path, bytes);
  } catch (err) {
    logger.warn('cannot write the termination message', { path, error: errorMessage(err) });
  }
}
