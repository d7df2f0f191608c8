// SPDX-License-Identifier: Apache-2.0
/**
 * `cdi upload` (virtctl `image-upload`), in virtctl's spelling or ours:
 *
 * `cdi upload dv|pvc NAME --image-path FILE [--size 10Gi] [-n NS] ...`
 * `cdi upload (--dv NAME | --pvc NAME) --file FILE [--size 10Gi] [-n NS] ...`
 *
 * with virtctl's `--uploadproxy-url --insecure --no-create --force-bind --access-mode
 * --volume-mode --storage-class --wait-secs --archive-path`, and ours `--ca-file --async
 * --checksum --kubeconfig --block-volume` (`cdi upload --help` lists them). Creates the
 * DataVolume (or upload PVC) when needed, refuses at once one that already Succeeded, waits for
 * UploadReady, mints a token, uploads with a progress bar (rate, ETA) resuming after network
 * errors, and waits for Succeeded. Errors are thrown: the edge prints them once.
 */
import { readFile } from 'node:fs/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { ContentTypes } from '../../common/contract.js';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { parseChecksum, type ExpectedChecksum } from '../../importer/checksum/checksum.js';
import { boolFlag, parseArgs, stringFlag, UsageError } from '../../common/cli/args.js';
import type { CommandContext } from '../../common/cli/context.js';
import { uploadFile } from './client.js';
import { UploadVolumeClient, type UploadVolume } from './kube-upload.js';
import { renderUploadProgress } from './upload-progress.js';

const FLAGS = {
  namespace: { type: 'string', short: 'n' },
  dv: 'string',
  pvc: 'string',
  file: 'string',
  'image-path': 'string',
  'archive-path': 'string',
  size: 'string',
  'storage-class': 'string',
  'access-mode': 'string',
  'volume-mode': 'string',
  'block-volume': 'boolean',
  'force-bind': 'boolean',
  'uploadproxy-url': 'string',
  'ca-file': 'string',
  insecure: 'boolean',
  'no-create': 'boolean',
  async: 'boolean',
  checksum: 'string',
  kubeconfig: 'string',
  'wait-secs': 'string',
} as const;

const ACCESS_MODES: Readonly<Record<string, string>> = {
  RWO: 'ReadWriteOnce',
  ROX: 'ReadOnlyMany',
  RWX: 'ReadWriteMany',
  RWOP: 'ReadWriteOncePod',
};

/** Parsed `cdi upload` arguments. */
export interface UploadCommand {
  readonly volume: UploadVolume;
  readonly file: string;
  readonly proxyUrl: string | undefined;
  readonly caFile: string | undefined;
  readonly insecure: boolean;
  readonly create: boolean;
  readonly async: boolean;
  /** `--checksum sha256:HEX` (CDI's syntax), verified by the upload server. */
  readonly checksum: ExpectedChecksum | undefined;
  readonly kubeconfig: string | undefined;
  readonly waitMs: number;
}

/** `--checksum`: CDI's `algorithm:hex`, sha256 or sha512 (what `Repr-Digest` carries). */
function checksumFlag(text: string | undefined): ExpectedChecksum | undefined {
  if (text === undefined) return undefined;
  const checksum = parseChecksum(text);
  if (checksum.algorithm !== 'sha256' && checksum.algorithm !== 'sha512')
    throw new CdiError(
      ErrorCodes.InvalidArgument,
      `--checksum ${text}: uploads are verified with sha256 or sha512`,
    );
  return checksum;
}

/** `--volume-mode`: virtctl's `block` or `filesystem` (any case). */
function volumeModeFlag(
  text: string | undefined,
  block: boolean,
): 'Block' | 'Filesystem' | undefined {
  if (text === undefined) return block ? 'Block' : undefined;
  const mode = text.toLowerCase();
  if (mode === 'block') return 'Block';
  if (mode === 'filesystem' && !block) return 'Filesystem';
  if (mode === 'filesystem')
    throw new UsageError('--block-volume contradicts --volume-mode filesystem');
  throw new UsageError(`--volume-mode ${text} is not block or filesystem`);
}

/** The volume named by `dv NAME` / `pvc NAME` (virtctl) or `--dv` / `--pvc` (ours). */
function volumeName(
  positionals: readonly string[],
  dv: string | undefined,
  pvc: string | undefined,
): { readonly kind: 'dv' | 'pvc'; readonly name: string } {
  const [kind, name] = positionals;
  if (kind !== undefined) {
    if (kind !== 'dv' && kind !== 'pvc')
      throw new UsageError(
        `unexpected argument ${JSON.stringify(kind)} (takes dv NAME or pvc NAME)`,
      );
    if (name === undefined) throw new UsageError(`missing NAME after ${kind}`);
    if (dv !== undefined || pvc !== undefined)
      throw new UsageError(`${kind} ${name} and --dv/--pvc name the volume twice`);
    return { kind, name };
  }
  if (dv !== undefined && pvc === undefined) return { kind: 'dv', name: dv };
  if (pvc !== undefined && dv === undefined) return { kind: 'pvc', name: pvc };
  throw new UsageError('name the volume: dv NAME, pvc NAME, --dv NAME or --pvc NAME (one of them)');
}

/** Parses and checks the arguments; a usage error naming the problem. */
export function parseUploadCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): UploadCommand {
  const args = parseArgs(argv, FLAGS, { max: 2, names: 'dv|pvc NAME' });
  const bad = (m: string): UsageError => new UsageError(m);
  const target = volumeName(args.positionals, stringFlag(args, 'dv'), stringFlag(args, 'pvc'));
  const image = stringFlag(args, 'file') ?? stringFlag(args, 'image-path');
  const archive = stringFlag(args, 'archive-path');
  if (image !== undefined && archive !== undefined)
    throw bad('--image-path and --archive-path are exclusive');
  const file = image ?? archive;
  if (file === undefined) throw bad('--image-path (or --file, or --archive-path) is required');
  const mode = stringFlag(args, 'access-mode');
  const accessMode = mode === undefined ? undefined : (ACCESS_MODES[mode] ?? mode);
  if (accessMode !== undefined && !Object.values(ACCESS_MODES).includes(accessMode))
    throw bad(`--access-mode ${mode ?? ''} is not one of RWO, ROX, RWX, RWOP`);
  const waitText = stringFlag(args, 'wait-secs') ?? '300';
  const waitSecs = Number(waitText);
  if (!Number.isFinite(waitSecs) || waitSecs <= 0)
    throw bad(`--wait-secs ${waitText} is not a positive number`);
  const size = stringFlag(args, 'size');
  const storageClass = stringFlag(args, 'storage-class');
  const volumeMode = volumeModeFlag(
    stringFlag(args, 'volume-mode'),
    boolFlag(args, 'block-volume'),
  );
  return {
    volume: {
      namespace: stringFlag(args, 'namespace') ?? 'default',
      name: target.name,
      kind: target.kind,
      ...(size === undefined ? {} : { size }),
      ...(storageClass === undefined ? {} : { storageClass }),
      ...(accessMode === undefined ? {} : { accessMode }),
      ...(volumeMode === undefined ? {} : { volumeMode }),
      ...(archive === undefined ? {} : { contentType: ContentTypes.Archive }),
      forceBind: boolFlag(args, 'force-bind'),
    },
    file,
    proxyUrl: stringFlag(args, 'uploadproxy-url'),
    caFile: stringFlag(args, 'ca-file'),
    insecure: boolFlag(args, 'insecure'),
    create: !boolFlag(args, 'no-create'),
    async: boolFlag(args, 'async'),
    checksum: checksumFlag(stringFlag(args, 'checksum')),
    kubeconfig: stringFlag(args, 'kubeconfig') ?? env['KUBECONFIG'],
    waitMs: waitSecs * 1000,
  };
}

/** See the module comment. */
export async function uploadMain(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const cmd = parseUploadCommand(argv, ctx.env);
  const kc = new KubeConfig();
  if (cmd.kubeconfig === undefined) kc.loadFromDefault();
  else kc.loadFromFile(cmd.kubeconfig);
  const cluster = new UploadVolumeClient(kc);
  const v = cmd.volume;
  const what = `${v.kind === 'dv' ? 'DataVolume' : 'PVC'} ${v.namespace}/${v.name}`;
  if (await cluster.ensure(v, cmd.create)) ctx.stderr.write(`${what} created\n`);
  // virtctl would wait for UploadReady until --wait-secs; a finished volume never gets there.
  else if ((await cluster.phase(v)) === 'Succeeded')
    throw new CdiError(
      ErrorCodes.UploadNotReady,
      `${what} has already been uploaded (phase Succeeded); delete it or choose another name`,
    );
  ctx.stderr.write(`Waiting for ${what} upload pod to be ready...\n`);
  await cluster.waitPhase(v, ['UploadReady'], { timeoutMs: cmd.waitMs, signal: ctx.signal });
  const proxyUrl = cmd.proxyUrl ?? (await cluster.proxyUrl());
  const token = await cluster.token(v);
  const caPem = cmd.caFile === undefined ? undefined : await readFile(cmd.caFile, 'utf8');
  const started = Date.now();
  let lastDraw = 0;
  const tty = ctx.stderr.isTTY;
  ctx.stderr.write(`Uploading ${cmd.file} to ${proxyUrl}\n`);
  const result = await uploadFile({
    proxyUrl,
    token,
    file: cmd.file,
    async: cmd.async,
    ...(cmd.checksum === undefined ? {} : { checksum: cmd.checksum }),
    ...(caPem === undefined ? {} : { caPem }),
    insecure: cmd.insecure,
    target: { namespace: v.namespace, pvc: v.name },
    signal: ctx.signal,
    logger: ctx.logger,
    onProgress: (p) => {
      const now = Date.now();
      if (now - lastDraw < (tty ? 200 : 5000) && p.sent < p.total) return;
      lastDraw = now;
      const line = renderUploadProgress(
        {
          sent: p.sent,
          total: p.total,
          sentThisRun: p.sent,
          elapsedMs: now - started,
        },
        ctx.stderr.columns || 80,
      );
      ctx.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
    },
  });
  if (tty) ctx.stderr.write('\n');
  ctx.stderr.write(
    `Uploaded ${result.bytes} bytes${result.resumes > 0 ? ` (resumed ${result.resumes} time${result.resumes === 1 ? '' : 's'})` : ''}\n`,
  );
  if (cmd.async) {
    ctx.stderr.write('Upload received; processing continues on the server (--async)\n');
    return 0;
  }
  ctx.stderr.write(`Waiting for ${what} to finish processing...\n`);
  await cluster.waitPhase(v, ['Succeeded'], {
    timeoutMs: Math.max(cmd.waitMs, 24 * 3600 * 1000),
    signal: ctx.signal,
  });
  ctx.stderr.write(`${what} Succeeded\n`);
  return 0;
}
