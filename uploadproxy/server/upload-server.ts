// SPDX-License-Identifier: Apache-2.0
/**
 * The upload server (`cdi uploadserver`, CDI `pkg/uploadserver`): an mTLS HTTPS server in the
 * upload pod that accepts one upload, runs the import pipeline on it, and resolves `done` once the
 * image is complete so the process can write its termination message and exit.
 *
 * Status vocabulary (CDI's): a second upload while one is attached or processing → 503, any upload
 * after success → 409, a client without the proxy's certificate → 401, capacity problems → 400
 * "Saving stream failed: ...", other failures → 500. A failed or dropped upload leaves the server
 * ready: a dropped one can be resumed (resumable.ts) or restarted from zero.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import { ContentTypes, UPLOAD_REFUSED_METRIC, type ContentType } from '../../common/contract.js';
import { formatDuration } from '../../common/duration.js';
import {
  CdiError,
  ErrorCodes,
  errorMessage,
  isNoCapacityError,
  wrapError,
} from '../../common/errors.js';
import { listenOn } from '../protocol/listen.js';
import type { Logger } from '../../common/logger.js';
import type { ImportResult, ImportTarget } from '../../importer/pipeline/import.js';
import { openFormFile } from './multipart.js';
import type { ProgressMetric } from '../../importer/progress/metrics-server.js';
import type { ExpectedChecksum } from '../../importer/checksum/checksum.js';
import {
  HEALTHZ_PATH,
  METRICS_PATH,
  UPLOAD_LENGTH_HEADER,
  UPLOAD_OFFSET_HEADER,
  uploadModeOf,
  type UploadMode,
} from '../protocol/paths.js';
import {
  REPR_DIGEST_HEADER,
  formatReprDigest,
  parseReprDigest,
  sameChecksum,
} from '../protocol/repr-digest.js';
import { parseContentRange, type ContentRange } from './resumable.js';
import { sendError, sendText } from '../protocol/status.js';
import { UploadSession } from './upload-session.js';
import { CLONE_UPLOAD_PATH, receiveClone } from './clone-receive.js';

/** mTLS settings: the server's certificate and the CA + name of the one client allowed (the proxy). */
export interface UploadServerTls {
  readonly keyPem: string;
  readonly certPem: string;
  readonly clientCaPem: string;
  /** Required common name of the client certificate (CDI `CLIENT_NAME`). */
  readonly clientName: string;
}

/** Options of {@link startUploadServer}. */
export interface UploadServerOptions {
  /** Plain HTTP when omitted (tests and `--insecure` only). */
  readonly tls?: UploadServerTls;
  readonly host?: string;
  readonly port?: number;
  /** The disk target (`/data/disk.img` or the block device). */
  readonly target: ImportTarget;
  /** Where `/upload-archive` extracts (the data directory). */
  readonly archiveDir?: string;
  /** The content type of plain upload paths (the PVC's, `kubevirt` by default). */
  readonly contentType?: ContentType;
  readonly requestedSize?: number;
  readonly filesystemOverhead: number;
  readonly preallocation: boolean;
  readonly spillDir: string;
  /** How received bytes wait for the pipeline (see UploadSessionOptions.journal). */
  readonly journal?: 'memory' | 'disk';
  readonly logger: Logger;
  /**
   * The progress counter served on `/metrics` (no client certificate needed, like `/healthz`):
   * the controller scrapes it for the DataVolume's progress, as it does an importer's.
   */
  readonly progress?: ProgressMetric;
  /**
   * The clone counter (`kubevirt_cdi_clone_progress_total`), served on `/metrics` instead of
   * `progress` once a clone stream arrives.
   */
  readonly cloneProgress?: ProgressMetric;
  /** Called when a connection drops mid-upload, with the durable byte count (logs, tests). */
  readonly onDrop?: (durable: number) => void;
  /** A receiving connection silent this long is treated as dropped (default 60 s). */
  readonly idleTimeoutMs?: number;
  /** A dropped upload not resumed within this time is discarded (default 1 h). */
  readonly resumeTimeoutMs?: number;
}

/** A running upload server. */
export interface UploadServer {
  readonly port: number;
  readonly url: string;
  /** Resolves with the import result after a successful upload; rejects when an async one fails. */
  readonly done: Promise<ImportResult>;
  /** True once `done` came from a clone stream (the termination message says "Clone Complete"). */
  readonly cloned: boolean;
  close(): Promise<void>;
}

/** Grace given to a client to read an early error answer before its socket is cut. */
const EARLY_ANSWER_GRACE_MS = 2000;
/** A receiving connection silent this long is treated as dropped. */
export const DEFAULT_UPLOAD_IDLE_TIMEOUT_MS = 60_000;
/** CDI's words for an upload that does not fit its claim (`handleStreamError`). */
const CAPACITY_WORDING = 'effective image size is larger than the reported available storage';

/** Starts the server; see the module comment. */
export async function startUploadServer(options: UploadServerOptions): Promise<UploadServer> {
  const state = new ServerState(options);
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    state.handle(req, res).catch((err: unknown) => {
      options.logger.error('upload request failed', { error: errorMessage(err) });
      sendError(res, err);
    });
  };
  const server: Server =
    options.tls === undefined
      ? createHttpServer(handler)
      : createHttpsServer(
          {
            key: options.tls.keyPem,
            cert: options.tls.certPem,
            ca: options.tls.clientCaPem,
            requestCert: true,
            // Checked per request so an unauthorised client gets CDI's 401, not a TLS alert.
            rejectUnauthorized: false,
            minVersion: 'TLSv1.2',
          },
          handler,
        );
  // Uploads may be slow and long: no request timeout (CDI's proxy allows 24 h).
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  const listening = await listenOn(server, {
    host: options.host,
    port: options.port,
    tls: options.tls !== undefined,
  });
  return {
    port: listening.port,
    url: listening.url,
    done: state.done,
    get cloned() {
      return state.cloned;
    },
    close: async () => {
      await listening.close();
      await state.dispose();
    },
  };
}

/** The refusal as a Prometheus info metric (label value escaped as the text format requires). */
function refusalMetric(message: string): string {
  const value = message.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
  return (
    `# HELP ${UPLOAD_REFUSED_METRIC} Why the last upload was refused.\n` +
    `# TYPE ${UPLOAD_REFUSED_METRIC} gauge\n` +
    `${UPLOAD_REFUSED_METRIC}{message="${value}"} 1\n`
  );
}

/** What a request announces: its range, the image length, and whether it carries the last byte. */
interface RequestShape {
  readonly range: ContentRange | undefined;
  /** The whole image's length when known (Content-Length of a plain upload, or the range total). */
  readonly length: number | undefined;
  readonly endsUpload: boolean;
}

/** Reads Content-Range / Content-Length (ignored for forms, whose body is an envelope). */
function requestShape(req: IncomingMessage, mode: UploadMode): RequestShape {
  if (mode.form) return { range: undefined, length: undefined, endsUpload: true };
  const header = req.headers['content-range'];
  const range = header === undefined ? undefined : parseContentRange(header);
  const lengthHeader = req.headers['content-length'];
  const bodyLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
  if (range === undefined) return { range, length: bodyLength, endsUpload: true };
  if (bodyLength !== undefined && bodyLength !== range.end - range.start + 1)
    throw new CdiError(ErrorCodes.InvalidArgument, 'Content-Length disagrees with Content-Range', {
      httpStatus: 400,
    });
  return {
    range,
    length: range.total,
    endsUpload: range.total !== undefined && range.end + 1 === range.total,
  };
}

class ServerState {
  readonly done: Promise<ImportResult>;
  #resolve!: (r: ImportResult) => void;
  #reject!: (e: unknown) => void;
  #session: UploadSession | undefined;
  #finished = false;
  #resumeTimer: NodeJS.Timeout | undefined;
  /** Why the last upload was refused, served on /metrics until the next one starts. */
  #refusal: string | undefined;
  readonly #options: UploadServerOptions;
  /** A clone stream is being received. */
  #cloning = false;
  #cloned = false;
  readonly #cloneAbort = new AbortController();

  constructor(options: UploadServerOptions) {
    this.#options = options;
    this.done = new Promise<ImportResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The process edge observes `done`; this keeps an unobserved rejection from crashing tests.
    this.done.catch(() => undefined);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const pathname = (req.url ?? '').split('?')[0];
    if (pathname === HEALTHZ_PATH) {
      sendText(res, 200, 'OK');
      return;
    }
    if (await this.#serveClone(pathname, req, res)) return;
    if (pathname === METRICS_PATH && this.#options.progress !== undefined) {
      await this.#answerProgress(res, this.#options.progress);
      return;
    }
    const mode = uploadModeOf(req.url);
    if (mode === undefined) {
      sendText(res, 404, '404 page not found');
      return;
    }
    if (!this.#clientAllowed(req)) {
      sendText(res, 401, 'client certificate is missing or not the upload proxy');
      return;
    }
    if (req.method === 'HEAD') {
      // While a request is still attached its bytes are not settled: a client that lost its
      // connection must wait for the server to notice the drop, not restart from byte 0.
      if (this.#session?.attached === true) this.#answerOffset(res, 503);
      else this.#answerOffset(res, 200);
      return;
    }
    if (req.method !== 'POST' && req.method !== 'PUT' && req.method !== 'PATCH') {
      sendText(res, 404, '404 page not found');
      return;
    }
    await this.#upload(req, res, mode);
  }

  /** The clone stream path, and the clone counter once a clone started; false for the rest. */
  async #serveClone(
    pathname: string | undefined,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<boolean> {
    if (pathname === CLONE_UPLOAD_PATH) {
      await this.#clone(req, res);
      return true;
    }
    const metric = this.#options.cloneProgress ?? this.#options.progress;
    if (pathname !== METRICS_PATH || !(this.#cloning || this.#cloned) || metric === undefined)
      return false;
    await renderMetric(res, metric, this.#cloned);
    return true;
  }

  get cloned(): boolean {
    return this.#cloned;
  }

  /** Receives a clone source's extent stream (clone-receive.ts); one at a time, once. */
  async #clone(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#clientAllowed(req)) {
      sendText(res, 401, 'client certificate is missing or not the clone source');
      return;
    }
    if (req.method !== 'POST' && req.method !== 'PUT') {
      sendText(res, 404, '404 page not found');
      return;
    }
    if (this.#finished) {
      sendText(res, 409, 'upload already completed');
      return;
    }
    if (this.#cloning || this.#session !== undefined) {
      sendText(res, 503, 'an upload is already in progress');
      return;
    }
    this.#cloning = true;
    const o = this.#options;
    const metric = o.cloneProgress ?? o.progress;
    try {
      const result = await receiveClone({
        body: req,
        target: o.target,
        ...(o.requestedSize === undefined ? {} : { requestedSize: o.requestedSize }),
        filesystemOverhead: o.filesystemOverhead,
        preallocation: o.preallocation,
        signal: this.#cloneAbort.signal,
        logger: o.logger,
        onPosition: (position, size) => {
          if (size > 0) metric?.setProgress(Math.min(100, (position / size) * 100));
        },
      });
      this.#finished = true;
      this.#cloned = true;
      sendText(res, 200, '');
      o.logger.info('clone complete', { ...result });
      this.#resolve(result);
    } catch (err) {
      // The source pod fails and restarts; the next stream starts again from byte 0.
      if (!res.headersSent && !req.destroyed) this.#answerEarly(req, res, err);
    } finally {
      this.#cloning = false;
    }
  }

  #clientAllowed(req: IncomingMessage): boolean {
    const tls = this.#options.tls;
    if (tls === undefined) return true;
    const socket = req.socket as TLSSocket;
    if (!socket.authorized) return false;
    const cn = socket.getPeerCertificate().subject?.CN;
    return cn === tls.clientName;
  }

  /** Percent of the image received (100 once finished; 0 while its length is unknown). */
  async #answerProgress(res: ServerResponse, progress: ProgressMetric): Promise<void> {
    const journal = this.#session?.journal;
    const total = journal?.total;
    if (this.#finished) progress.setProgress(100);
    else if (journal !== undefined && total !== undefined && total > 0)
      progress.setProgress(Math.min(100, (journal.received / total) * 100));
    const { contentType, body } = await progress.render();
    res
      .writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' })
      .end(this.#refusal === undefined ? body : `${body}${refusalMetric(this.#refusal)}`);
  }

  #answerOffset(res: ServerResponse, status: number): void {
    const journal = this.#session?.journal;
    const offset = this.#finished ? (journal?.total ?? 0) : (journal?.durable ?? 0);
    res.writeHead(status, {
      [UPLOAD_OFFSET_HEADER]: String(offset),
      ...(journal?.total === undefined ? {} : { [UPLOAD_LENGTH_HEADER]: String(journal.total) }),
      ...(offset > 0 ? { range: `bytes=0-${offset - 1}` } : {}),
      'cache-control': 'no-store',
      'content-length': 0,
    });
    res.end();
  }

  async #upload(req: IncomingMessage, res: ServerResponse, mode: UploadMode): Promise<void> {
    if (this.#finished) {
      sendText(res, 409, 'upload already completed');
      return;
    }
    const current = this.#session;
    if (current?.attached === true || (current?.journal.complete === true && !current.settled)) {
      sendText(res, 503, 'an upload is already in progress');
      return;
    }
    const shape = requestShape(req, mode);
    let checksum: ExpectedChecksum | undefined;
    try {
      checksum = parseReprDigest(req.headersDistinct[REPR_DIGEST_HEADER]?.join(', '));
    } catch (err) {
      this.#answerEarly(req, res, err);
      return;
    }
    const body: Readable = mode.form ? await openFormFile(req.headers, req) : req;
    const session = await this.#sessionFor(shape.range, shape.length, mode, checksum);
    if (session === undefined) {
      this.#answerOffset(res, 416);
      return;
    }
    if (!this.#checksumFits(session, checksum, req, res)) return;
    if (shape.range?.total !== undefined) session.journal.setTotal(shape.range.total);
    clearTimeout(this.#resumeTimer);
    // A connection that goes silent (a dead NAT path sends no RST) counts as dropped, so a resume
    // is not refused as "already in progress" for ever. Only while receiving: processing is quiet.
    const idleMs = this.#options.idleTimeoutMs ?? DEFAULT_UPLOAD_IDLE_TIMEOUT_MS;
    req.setTimeout(idleMs, () =>
      req.destroy(
        new CdiError(
          ErrorCodes.SourceStalled,
          `the upload client sent nothing for ${formatDuration(idleMs)}`,
        ),
      ),
    );
    let outcome;
    try {
      outcome = await session.receive(body, shape.endsUpload);
      req.setTimeout(0);
    } catch (err) {
      await this.#afterFailedReceive(session, err, req, res);
      return;
    }
    if (outcome === 'partial') {
      this.#answerOffset(res, 204);
      this.#armResumeTimer(session);
    } else if (mode.async) {
      sendText(res, 200, '');
      void this.#settle(session, undefined);
    } else {
      await this.#settle(session, res);
    }
  }

  /**
   * A resumed part may repeat the upload's `Repr-Digest` (the same value) or leave it out; a
   * different one, or one that was not sent with the first part, is refused: the digest is
   * computed from byte 0 as the pipeline reads.
   */
  #checksumFits(
    session: UploadSession,
    checksum: ExpectedChecksum | undefined,
    req: IncomingMessage,
    res: ServerResponse,
  ): boolean {
    if (
      checksum === undefined ||
      (session.checksum !== undefined && sameChecksum(checksum, session.checksum))
    )
      return true;
    const why =
      session.checksum === undefined
        ? 'Repr-Digest must come with the first part of an upload'
        : 'Repr-Digest differs from the one this upload started with';
    this.#answerEarly(req, res, new CdiError(ErrorCodes.ChecksumInvalid, why, { httpStatus: 400 }));
    return false;
  }

  /** The session a request continues, a fresh one, or undefined when its range does not fit. */
  async #sessionFor(
    range: ContentRange | undefined,
    length: number | undefined,
    mode: UploadMode,
    checksum: ExpectedChecksum | undefined,
  ): Promise<UploadSession | undefined> {
    const current = this.#session;
    if (range !== undefined && range.start > 0) {
      if (current === undefined || current.journal.received !== range.start) return undefined;
      return current;
    }
    this.#refusal = undefined;
    // A new upload from byte 0 replaces a dropped one (what virtctl's retries do).
    if (current !== undefined) {
      this.#session = undefined;
      await current.dispose('upload restarted from the beginning');
    }
    const archive = mode.archive || this.#options.contentType === ContentTypes.Archive;
    const o = this.#options;
    const session = await UploadSession.start(
      {
        target: archive ? { kind: 'dir', path: o.archiveDir ?? o.target.path } : o.target,
        contentType: archive ? ContentTypes.Archive : ContentTypes.Kubevirt,
        ...(o.requestedSize === undefined ? {} : { requestedSize: o.requestedSize }),
        filesystemOverhead: o.filesystemOverhead,
        preallocation: o.preallocation,
        spillDir: o.spillDir,
        ...(o.journal === undefined ? {} : { journal: o.journal }),
        ...(checksum === undefined ? {} : { checksum }),
        logger: o.logger,
      },
      length,
    );
    this.#session = session;
    return session;
  }

  async #afterFailedReceive(
    session: UploadSession,
    err: unknown,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const { logger } = this.#options;
    if (!session.settled && !req.destroyed && !res.headersSent) {
      // A client-side problem that is not the pipeline's (e.g. too long a body): answer it.
      logger.warn('upload refused', { error: errorMessage(err) });
      this.#answerEarly(req, res, err, undefined);
      this.#armResumeTimer(session);
      return;
    }
    if (!session.settled) {
      // The connection dropped or went silent: keep the journal for a resume.
      logger.warn('upload connection dropped; keeping what was received for a resume', {
        durable: session.journal.durable,
        error: errorMessage(err),
      });
      this.#armResumeTimer(session);
      this.#options.onDrop?.(session.journal.durable);
      return;
    }
    // The pipeline failed: answer, discard the upload, stay ready for a new one.
    const failure = await session.result.then(
      () => err,
      (e: unknown) => e,
    );
    const answer = isNoCapacityError(failure) ? wrapError(failure, CAPACITY_WORDING) : failure;
    logger.error('Saving stream failed', { error: errorMessage(answer) });
    this.#refusal = `Saving stream failed: ${errorMessage(answer)}`;
    this.#answerEarly(req, res, answer);
    await this.#discard(session);
  }

  /**
   * Sends an error while the client may still be sending, then reads and discards the rest for a
   * grace period before cutting the connection. No `Connection: close`: Node would close the
   * socket right after the answer, and closing a socket with unread bytes sends a reset, which
   * can destroy the answer before the peer (the proxy, still writing) reads it: it saw EPIPE or
   * ECONNRESET and answered 502.
   */
  #answerEarly(
    req: IncomingMessage,
    res: ServerResponse,
    err: unknown,
    prefix: string | undefined = 'Saving stream failed',
  ): void {
    sendError(res, err, prefix);
    req.resume();
    const timer = setTimeout(() => req.destroy(), EARLY_ANSWER_GRACE_MS);
    timer.unref();
    req.once('end', () => clearTimeout(timer));
  }

  async #settle(session: UploadSession, res: ServerResponse | undefined): Promise<void> {
    try {
      const result = await session.result;
      this.#finished = true;
      if (res !== undefined) {
        // The verified digest, so a client can see its checksum was checked (RFC 9530).
        if (session.checksum !== undefined)
          res.setHeader(REPR_DIGEST_HEADER, formatReprDigest(session.checksum));
        sendText(res, 200, '');
      }
      this.#options.logger.info('upload complete', { ...result });
      await session.journal.dispose();
      this.#resolve(result);
    } catch (err) {
      this.#options.logger.error('upload processing failed', { error: errorMessage(err) });
      this.#refusal = `Saving stream failed: ${errorMessage(err)}`;
      await this.#discard(session);
      if (res !== undefined) sendError(res, err, 'Saving stream failed');
      else this.#reject(err);
    }
  }

  #armResumeTimer(session: UploadSession): void {
    clearTimeout(this.#resumeTimer);
    this.#resumeTimer = setTimeout(() => {
      if (this.#session === session && !session.attached) void this.#discard(session);
    }, this.#options.resumeTimeoutMs ?? 3_600_000);
    this.#resumeTimer.unref();
  }

  async #discard(session: UploadSession): Promise<void> {
    if (this.#session === session) this.#session = undefined;
    await session.dispose();
  }

  async dispose(): Promise<void> {
    clearTimeout(this.#resumeTimer);
    this.#cloneAbort.abort();
    const session = this.#session;
    this.#session = undefined;
    if (session !== undefined && !this.#finished) await session.dispose('upload server closed');
  }
}

/** Serves a progress counter as it stands (100 once finished). */
async function renderMetric(
  res: ServerResponse,
  metric: ProgressMetric,
  finished: boolean,
): Promise<void> {
  if (finished) metric.setProgress(100);
  const { contentType, body } = await metric.render();
  res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
}
