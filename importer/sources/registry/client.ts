// SPDX-License-Identifier: Apache-2.0
/**
 * A small client of the OCI distribution API (`/v2/`): the ping that picks the scheme and learns
 * the auth challenge, manifests by tag or digest, and blobs as streams. Authentication is lazy:
 * a 401 carries a `WWW-Authenticate` challenge, we answer it once (Basic credentials or a bearer
 * token from the challenge's realm) and repeat the request.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import {
  CdiError,
  ErrorCodes,
  errorMessage,
  isRetryable,
  isRetryableStatus,
} from '../../../common/errors.js';
import type { Logger } from '../../../common/logger.js';
import {
  basicAuthorization,
  fetchBearerToken,
  parseWwwAuthenticate,
  pullScope,
  type AuthChallenge,
  type RegistryCredentials,
} from './auth.js';
import { isStall, StallBudget } from '../http-limits.js';
import { retryStalls, withIdleTimeout } from '../idle-watch.js';
import { MANIFEST_ACCEPT } from './manifest.js';
import { formatImageReference, type ImageReference } from './reference.js';
import { IMPORTER_USER_AGENT } from '../http-dispatcher.js';

/** containers/image refuses manifests and configs larger than this; so do we. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Options of {@link RegistryClient}. */
export interface RegistryClientOptions {
  readonly ref: ImageReference;
  readonly dispatcher: Dispatcher;
  readonly credentials?: RegistryCredentials | undefined;
  /** Insecure registry: plain HTTP is tried when HTTPS fails. */
  readonly insecure: boolean;
  readonly logger: Logger;
  /**
   * The pull's stall budget (http-limits.ts): a request whose answer or small body stays silent
   * for its watchdog time is cut and sent again until the budget is spent. Default: the
   * default limits.
   */
  readonly budget?: StallBudget;
}

/** A manifest as served, with the digest of its exact bytes. */
export interface FetchedManifest {
  readonly mediaType: string;
  readonly bytes: Buffer;
  readonly digest: string;
}

/** A blob response body and its announced length. */
export interface BlobResponse {
  readonly body: Readable;
  readonly length: number | undefined;
  /** True for a 206 answer to a resume (the body starts at the asked offset). */
  readonly partial: boolean;
}

type ResponseData = Dispatcher.ResponseData;

/** The `sha256:<hex>` digest of bytes. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Turns a distribution error body (`{"errors":[{"code","message"}]}`) into words. */
export function describeRegistryError(status: number, body: string): string {
  try {
    const parsed = JSON.parse(body) as { errors?: { code?: unknown; message?: unknown }[] };
    const parts = (parsed.errors ?? []).map((e) => {
      const message = typeof e.message === 'string' ? e.message : '';
      const code = typeof e.code === 'string' ? e.code.toLowerCase().replace(/_/g, ' ') : '';
      return code !== '' && message !== '' && code !== message
        ? `${code}: ${message}`
        : message || code;
    });
    if (parts.length > 0) return parts.join('; ');
  } catch {
    // Not JSON: fall through to the status line.
  }
  return status === 401 ? 'unauthorized: authentication required' : `status ${status}`;
}

/** The OCI distribution client of one repository. */
export class RegistryClient {
  readonly #opts: RegistryClientOptions;
  readonly #budget: StallBudget;
  #base: string | undefined;
  #authorization: string | undefined;

  constructor(options: RegistryClientOptions) {
    this.#opts = options;
    this.#budget = options.budget ?? new StallBudget();
  }

  /** The pull as a stall names it: `docker://registry/repository:tag`. */
  get transfer(): string {
    return `docker://${formatImageReference(this.#opts.ref)}`;
  }

  /** The pull's stall budget, shared with the blob readers. */
  get budget(): StallBudget {
    return this.#budget;
  }

  /** `scheme://host[:port]` once {@link ping} has picked the scheme. */
  get baseUrl(): string | undefined {
    return this.#base;
  }

  /**
   * `GET /v2/`: picks HTTPS (or plain HTTP for an insecure registry that does not speak TLS) and
   * answers an auth challenge up front.
   */
  async ping(signal: AbortSignal): Promise<void> {
    const host = this.#opts.ref.apiHost;
    const candidates = this.#opts.insecure
      ? [`https://${host}`, `http://${host}`]
      : [`https://${host}`];
    let lastError: unknown;
    for (const [i, base] of candidates.entries()) {
      const url = `${base}/v2/`;
      const exchange = async (s: AbortSignal): Promise<number> => {
        const res = await this.#raw(url, 'GET', {}, s);
        const body = await res.body.text();
        if (res.statusCode === 401) {
          this.#base = base;
          await this.#authenticate(res.headers, s);
        } else if (res.statusCode !== 200) {
          throw this.#httpError(`pinging ${host}`, res.statusCode, body);
        }
        return res.statusCode;
      };
      // A plain-HTTP server may answer a TLS hello with silence: a stalled HTTPS ping of an
      // insecure registry moves on to plain HTTP; the last scheme is retried within the budget.
      const last = i === candidates.length - 1;
      try {
        const status = last
          ? await retryStalls(
              this.#budget,
              { request: url, transfer: this.transfer },
              signal,
              exchange,
            )
          : await withIdleTimeout(url, this.#budget.watchdogMs(), signal, exchange);
        if (status === 200) this.#base = base;
        return;
      } catch (err) {
        if (signal.aborted) throw err;
        lastError = err;
        if (isStall(err) && !last) {
          const spent = this.#budget.charge(err, this.transfer);
          if (spent !== undefined) throw spent;
        } else if (err instanceof CdiError) {
          throw err;
        }
        this.#opts.logger.debug('registry ping failed', { base, error: errorMessage(err) });
      }
    }
    throw new CdiError(
      ErrorCodes.RegistryPullFailed,
      `pinging container registry ${host}: ${errorMessage(lastError)}`,
      { cause: lastError, retryable: isRetryable(lastError) },
    );
  }

  /** GETs a manifest (tag or digest), checking its digest when asked by digest. */
  async getManifest(reference: string, signal: AbortSignal): Promise<FetchedManifest> {
    const { repository, registry } = this.#opts.ref;
    const what = `reading manifest ${reference} in ${registry}/${repository}`;
    const { res, bytes } = await this.#fetchSmall(
      `/v2/${repository}/manifests/${reference}`,
      { accept: MANIFEST_ACCEPT },
      what,
      signal,
    );
    if (res.statusCode !== 200) throw this.#httpError(what, res.statusCode, bytes.toString('utf8'));
    const digest = sha256Digest(bytes);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new CdiError(
        ErrorCodes.RegistryDigestMismatch,
        `manifest digest mismatch: expected ${reference}, calculated ${digest}`,
        { details: { expected: reference, actual: digest } },
      );
    }
    const contentType = headerValue(res.headers['content-type']) ?? '';
    return { mediaType: contentType.split(';')[0]?.trim() ?? '', bytes, digest };
  }

  /**
   * GETs a blob as a stream; the caller verifies the digest while reading. With `offset > 0` it
   * asks for `Range: bytes=offset-`; `partial` tells whether the server honoured it (206 starting
   * at `offset`) or sent the whole blob (200).
   */
  async getBlob(digest: string, signal: AbortSignal, offset = 0): Promise<BlobResponse> {
    const { repository, registry } = this.#opts.ref;
    const what = `reading blob ${digest} in ${registry}/${repository}`;
    const range: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const res = await this.#send(`/v2/${repository}/blobs/${digest}`, range, signal);
    const partial = offset > 0 && res.statusCode === 206;
    if (partial) {
      const start = /^bytes (\d+)-/.exec(headerValue(res.headers['content-range']) ?? '')?.[1];
      if (Number(start) !== offset) {
        await res.body.dump();
        throw new CdiError(
          ErrorCodes.ResumeFailed,
          `${what}: resume at ${offset} answered with Content-Range ${start ?? 'none'}`,
        );
      }
    } else if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => '');
      throw this.#httpError(what, res.statusCode, text);
    }
    const length = Number(headerValue(res.headers['content-length']));
    return {
      body: res.body,
      length: Number.isSafeInteger(length) ? length : undefined,
      partial,
    };
  }

  /** GETs a small blob (an image config) whole and checks its digest. */
  async getSmallBlob(digest: string, signal: AbortSignal): Promise<Buffer> {
    const { repository, registry } = this.#opts.ref;
    const what = `reading blob ${digest} in ${registry}/${repository}`;
    const { res, bytes } = await this.#fetchSmall(
      `/v2/${repository}/blobs/${digest}`,
      {},
      what,
      signal,
    );
    if (res.statusCode !== 200) throw this.#httpError(what, res.statusCode, bytes.toString('utf8'));
    const actual = sha256Digest(bytes);
    if (digest.startsWith('sha256:') && actual !== digest) {
      throw new CdiError(
        ErrorCodes.RegistryDigestMismatch,
        `blob digest mismatch: expected ${digest}, calculated ${actual}`,
        { details: { expected: digest, actual } },
      );
    }
    return bytes;
  }

  /** GETs a small document whole, sending it again while it stalls (see {@link retryStalls}). */
  #fetchSmall(
    path: string,
    extra: Record<string, string>,
    what: string,
    signal: AbortSignal,
  ): Promise<{ res: ResponseData; bytes: Buffer }> {
    return retryStalls(
      this.#budget,
      { request: what, transfer: this.transfer },
      signal,
      async (s, alive) => {
        const res = await this.#send(path, extra, s);
        alive();
        return { res, bytes: await readLimited(res, MAX_MANIFEST_BYTES, what, alive) };
      },
    );
  }

  async #send(
    path: string,
    extra: Record<string, string>,
    signal: AbortSignal,
  ): Promise<ResponseData> {
    if (this.#base === undefined) await this.ping(signal);
    const url = `${this.#base ?? ''}${path}`;
    const headers = (): Record<string, string> => ({
      ...extra,
      ...(this.#authorization === undefined ? {} : { authorization: this.#authorization }),
    });
    let res = await this.#raw(url, 'GET', headers(), signal);
    if (res.statusCode === 401) {
      await res.body.dump();
      await this.#authenticate(res.headers, signal);
      res = await this.#raw(url, 'GET', headers(), signal);
    }
    return res;
  }

  async #raw(
    url: string,
    method: 'GET',
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<ResponseData> {
    return request(url, {
      method,
      dispatcher: this.#opts.dispatcher,
      headers: { 'user-agent': IMPORTER_USER_AGENT, ...headers },
      signal,
    });
  }

  /** Answers the challenge of a 401 response: Basic with our credentials, or a bearer token. */
  async #authenticate(headers: ResponseData['headers'], signal: AbortSignal): Promise<void> {
    const raw = headers['www-authenticate'];
    const values = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
    const challenges = values.flatMap((v) => parseWwwAuthenticate(v));
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    const { credentials, ref } = this.#opts;
    if (bearer !== undefined) {
      // The ping's challenge names no scope: ask for pull on our repository.
      const challenge: AuthChallenge = {
        scheme: 'bearer',
        params: { ...bearer.params, scope: bearer.params['scope'] ?? pullScope(ref.repository) },
      };
      const token = await fetchBearerToken({
        challenge,
        repository: ref.repository,
        credentials,
        get: async (url, h) => {
          const res = await this.#raw(url.toString(), 'GET', h, signal);
          return { status: res.statusCode, body: await res.body.text() };
        },
      });
      this.#authorization = `Bearer ${token}`;
      return;
    }
    if (basic !== undefined && credentials !== undefined) {
      this.#authorization = basicAuthorization(credentials);
      return;
    }
    throw new CdiError(
      ErrorCodes.RegistryPullFailed,
      `unauthorized: authentication required by ${ref.registry}` +
        (credentials === undefined ? ' and no credentials were given' : ''),
      { httpStatus: 401 },
    );
  }

  #httpError(what: string, status: number, body: string): CdiError {
    return new CdiError(
      ErrorCodes.RegistryPullFailed,
      `${what}: ${describeRegistryError(status, body)}`,
      { httpStatus: status, retryable: isRetryableStatus(status) },
    );
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Reads a whole response body, refusing more than `max` bytes. */
async function readLimited(
  res: ResponseData,
  max: number,
  what: string,
  alive: () => void,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    alive();
    total += chunk.length;
    if (total > max) {
      res.body.destroy();
      throw new CdiError(ErrorCodes.RegistryPullFailed, `${what}: larger than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
