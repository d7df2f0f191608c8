// SPDX-License-Identifier: Apache-2.0
/**
 * `cdi clone-source`: the clone source pod's entry (CDI's `cdi-cloner`), configured by CDI's
 * environment: it reads the source claim, read-only, and POSTs it as an extent stream
 * (importer/clone/extent-stream.ts) to the target's upload server over mTLS, then exits 0 once
 * the server answers 200; any failure is one line on stderr and exit 1 (the pod restarts and the
 * next attempt starts over).
 *
 * Environment: `UPLOAD_URL` (`https://cdi-upload-<pvc>.<ns>.svc:8443/v1beta1/upload-clone`),
 * `CLIENT_KEY`, `CLIENT_CERT`, `SERVER_CA_CERT` (PEM text), `VOLUME_MODE` (`filesystem` or
 * `block`), `MOUNT_POINT` (the claim's mount directory, or the block device), `OWNER_UID`;
 * ours: `UPLOAD_SERVER_ADDRESS`, an address to dial instead of the URL's host (the Service's
 * cluster IP), the certificate still being checked against the URL's host name.
 */
import { open, stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PodPaths } from '../../common/contract.js';
import { CdiError, ErrorCodes, errorCode, errorMessage } from '../../common/errors.js';
import { parseArgs } from '../../common/cli/args.js';
import type { CommandContext } from '../../common/cli/context.js';
import { EXTENT_STREAM_CONTENT_TYPE, encodeExtents } from '../clone/extent-stream.js';
import { blockTargetSize } from '../sink/space.js';

/** Variables of the clone source pod (CDI's names, plus `UPLOAD_SERVER_ADDRESS`). */
export const CloneSourceEnv = {
  UploadUrl: 'UPLOAD_URL',
  ClientKey: 'CLIENT_KEY',
  ClientCert: 'CLIENT_CERT',
  ServerCaCert: 'SERVER_CA_CERT',
  VolumeMode: 'VOLUME_MODE',
  MountPoint: 'MOUNT_POINT',
  OwnerUid: 'OWNER_UID',
  ServerAddress: 'UPLOAD_SERVER_ADDRESS',
} as const;

/** Where CDI's cloner mounts a filesystem source claim. */
export const CLONER_MOUNT_PATH = '/var/run/cdi/clone/source';

/** The source pod's settings, parsed once. */
export interface CloneSourceConfig {
  readonly url: URL;
  readonly tls?: { readonly keyPem: string; readonly certPem: string; readonly caPem: string };
  /** The claim's image: `<mount>/disk.img` or the block device. */
  readonly path: string;
  readonly block: boolean;
  readonly address?: string;
}

function required(env: CommandContext['env'], name: string): string {
  const v = env[name];
  if (v === undefined || v === '')
    throw new CdiError(ErrorCodes.InvalidConfig, `${name} is required`);
  return v;
}

/** Reads the environment (see the module comment). */
export function loadCloneSourceConfig(env: CommandContext['env']): CloneSourceConfig {
  let url: URL;
  const raw = required(env, CloneSourceEnv.UploadUrl);
  try {
    url = new URL(raw);
  } catch {
    throw new CdiError(
      ErrorCodes.InvalidConfig,
      `${CloneSourceEnv.UploadUrl} is not a URL: ${raw}`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new CdiError(
      ErrorCodes.InvalidConfig,
      `${CloneSourceEnv.UploadUrl} must be https: ${raw}`,
    );
  const mode = env[CloneSourceEnv.VolumeMode] ?? 'filesystem';
  if (mode !== 'filesystem' && mode !== 'block')
    throw new CdiError(
      ErrorCodes.InvalidConfig,
      `${CloneSourceEnv.VolumeMode} must be filesystem or block, not ${JSON.stringify(mode)}`,
    );
  const block = mode === 'block';
  const mount =
    env[CloneSourceEnv.MountPoint] ?? (block ? PodPaths.CloneSourceDevice : CLONER_MOUNT_PATH);
  const address = env[CloneSourceEnv.ServerAddress];
  return {
    url,
    ...(url.protocol === 'https:'
      ? {
          tls: {
            keyPem: required(env, CloneSourceEnv.ClientKey),
            certPem: required(env, CloneSourceEnv.ClientCert),
            caPem: required(env, CloneSourceEnv.ServerCaCert),
          },
        }
      : {}),
    path: block ? mount : join(mount, PodPaths.DiskImageName),
    block,
    ...(address === undefined || address === '' ? {} : { address }),
  };
}

/** What one clone stream sent. */
export interface CloneSendResult {
  readonly size: number;
  readonly dataBytes: number;
}

/** Streams the source to the upload server; resolves when it answered 200. */
export async function sendClone(
  config: CloneSourceConfig,
  signal: AbortSignal,
  onPosition?: (position: number, size: number) => void,
): Promise<CloneSendResult> {
  const handle = await open(config.path, 'r').catch((err: unknown) => {
    throw new CdiError(
      ErrorCodes.InvalidConfig,
      `cannot open the clone source ${config.path}: ${errorMessage(err)}`,
      { cause: err },
    );
  });
  try {
    const st = await stat(config.path);
    const size = st.isBlockDevice() || config.block ? await blockTargetSize(config.path) : st.size;
    let dataBytes = 0;
    const body = Readable.from(
      encodeExtents({
        handle,
        size,
        signal,
        onPosition: (position, sent) => {
          dataBytes = sent;
          onPosition?.(position, size);
        },
      }),
      { objectMode: false },
    );
    const req = openRequest(config);
    const answer = responseOf(req);
    // The server may refuse early (401, a disk too large: 400) while bytes still flow: read its
    // answer, stop sending, and report the answer rather than the broken pipe.
    let early: Promise<Answer> | undefined;
    answer.then(
      (r) => {
        if (r.statusCode === 200) return;
        early = answerOf(r);
        void early.finally(() => body.destroy());
      },
      () => undefined,
    );
    let result: Answer;
    try {
      await pipeline(body, req, { signal });
      result = await answerOf(await answer);
    } catch (err) {
      const answered = early ?? (await answerWithin(answer, EARLY_ANSWER_WAIT_MS));
      if (answered === undefined || signal.aborted) throw err;
      result = await answered;
    }
    if (result.status !== 200)
      throw new CdiError(
        ErrorCodes.UpstreamHttp,
        `the upload server answered ${result.status}: ${result.text.trim()}`,
        { httpStatus: result.status },
      );
    return { size, dataBytes };
  } finally {
    await handle.close();
  }
}

function openRequest(config: CloneSourceConfig): ClientRequest {
  const { url, tls } = config;
  const common = {
    method: 'POST',
    host: config.address ?? url.hostname,
    port: url.port === '' ? (tls === undefined ? 80 : 443) : Number(url.port),
    path: `${url.pathname}${url.search}`,
    headers: { 'content-type': EXTENT_STREAM_CONTENT_TYPE, host: url.host },
  };
  if (tls === undefined) return httpRequest(common);
  return httpsRequest({
    ...common,
    // The certificate names the Service's DNS name, whatever address is dialled (SNI takes no IP).
    ...(isIP(url.hostname) === 0 ? { servername: url.hostname } : {}),
    key: tls.keyPem,
    cert: tls.certPem,
    ca: tls.caPem,
    minVersion: 'TLSv1.2',
  });
}

/** How long a failed send waits for the server's answer explaining it. */
const EARLY_ANSWER_WAIT_MS = 2000;

/** The server's status and the start of its body. */
interface Answer {
  readonly status: number;
  readonly text: string;
}

async function answerOf(res: IncomingMessage): Promise<Answer> {
  return { status: res.statusCode ?? 0, text: await readText(res).catch(() => '') };
}

async function answerWithin(
  answer: Promise<IncomingMessage>,
  ms: number,
): Promise<Promise<Answer> | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    const res = await Promise.race([answer.catch(() => undefined), timeout]);
    return res === undefined ? undefined : answerOf(res);
  } finally {
    clearTimeout(timer);
  }
}

function responseOf(req: ClientRequest): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
}

async function readText(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    const b = chunk as Buffer;
    // An error answer is one line; keep the first KiB.
    if (size < 1024) parts.push(b);
    size += b.length;
  }
  return Buffer.concat(parts).subarray(0, 1024).toString('utf8');
}

/** The verb; see the module comment. */
export async function cloneSourceCommand(
  argv: readonly string[],
  ctx: CommandContext,
): Promise<number> {
  // Configured by the environment only, as the importer pod.
  parseArgs(argv, {}, { max: 0 });
  const { logger } = ctx;
  try {
    const config = loadCloneSourceConfig(ctx.env);
    logger.info('clone source starting', { source: config.path, url: config.url.href });
    let logged = 0;
    const result = await sendClone(config, ctx.signal, (position, size) => {
      const percent = size === 0 ? 100 : Math.floor((position / size) * 100);
      if (percent >= logged + 10) {
        logged = percent;
        logger.info('clone progress', { percent });
      }
    });
    logger.info('clone source done', { ...result });
    return 0;
  } catch (err) {
    logger.error(errorMessage(err), { code: errorCode(err) });
    ctx.stderr.write(`${errorMessage(err).split('\n')[0] ?? ''}\n`);
    return 1;
  }
}
