// SPDX-License-Identifier: Apache-2.0
/**
 * `cdi upload` (virtctl `image-upload`):
 *
 * `cdi upload --namespace NS (--dv NAME | --pvc NAME) --file PATH [--size 10Gi]
 *   [--storage-class SC] [--access-mode RWO] [--block-volume] [--uploadproxy-url URL]
 *   [--ca-file F] [--insecure] [--no-create] [--async] [--checksum sha256:HEX] [--kubeconfig F]
 *   [--wait-secs 300]`
 *
 * Creates the DataVolume (or upload PVC) when needed, waits for UploadReady, mints a token, uploads
 * with a progress bar (rate, ETA) resuming after network errors, and waits for Succeeded. Failure:
 * one clear line on stderr and exit 1.
 */
import { readFile } from 'node:fs/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { CdiError, ErrorCodes, errorMessage } from '../../common/errors.js';
import { parseChecksum, type ExpectedChecksum } from '../../importer/checksum/checksum.js';
import { boolFlag, parseArgs, stringFlag } from '../../common/cli/args.js';
import type { CommandContext } from '../../common/cli/context.js';
import { uploadFile } from './client.js';
import { UploadVolumeClient, type UploadVolume } from './kube-upload.js';
import { renderUploadProgress } from './upload-progress.js';

const FLAGS = {
  namespace: 'string',
  n: 'string',
  dv: 'string',
  pvc: 'string',
  file: 'string',
  'image-path': 'string',
  size: 'string',
  'storage-class': 'string',
  'access-mode': 'string',
  'block-volume': 'boolean',
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

/** Parses and checks the arguments; `CDI_INVALID_ARGUMENT` naming the problem. */
export function parseUploadCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): UploadCommand {
  const args = parseArgs(argv, FLAGS);
  const bad = (m: string): CdiError => new CdiError(ErrorCodes.InvalidArgument, m);
  const dv = stringFlag(args, 'dv');
  const pvc = stringFlag(args, 'pvc');
  if ((dv === undefined) === (pvc === undefined))
    throw bad('exactly one of --dv or --pvc is required');
  const file = stringFlag(args, 'file') ?? stringFlag(args, 'image-path');
  if (file === undefined) throw bad('--file is required');
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
  return {
    volume: {
      namespace: stringFlag(args, 'namespace') ?? stringFlag(args, 'n') ?? 'default',
      name: (dv ?? pvc) as string,
      kind: dv === undefined ? 'pvc' : 'dv',
      ...(size === undefined ? {} : { size }),
      ...(storageClass === undefined ? {} : { storageClass }),
      ...(accessMode === undefined ? {} : { accessMode }),
      blockVolume: boolFlag(args, 'block-volume'),
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
  try {
    const cmd = parseUploadCommand(argv, ctx.env);
    const kc = new KubeConfig();
    if (cmd.kubeconfig === undefined) kc.loadFromDefault();
    else kc.loadFromFile(cmd.kubeconfig);
    const cluster = new UploadVolumeClient(kc);
    const v = cmd.volume;
    const what = `${v.kind === 'dv' ? 'DataVolume' : 'PVC'} ${v.namespace}/${v.name}`;
    if (await cluster.ensure(v, cmd.create)) ctx.stderr.write(`${what} created\n`);
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
        const line = renderUploadProgress({
          sent: p.sent,
          total: p.total,
          sentThisRun: p.sent,
          elapsedMs: now - started,
        });
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
  } catch (err) {
    ctx.logger.debug('upload failed', { error: errorMessage(err) });
    ctx.stderr.write(`cdi upload: ${errorMessage(err).split('\n')[0] ?? ''}\n`);
    return 1;
  }
}
