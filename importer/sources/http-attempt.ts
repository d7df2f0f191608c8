// SPDX-License-Identifier: Apache-2.0
/**
 * One HTTP request through `Dispatcher.dispatch` with undici's controller-style handler. The
 * body arrives as the socket's chunks with no intermediate BodyReadable (that extra stream costs
 * about a third of the time of a loopback download), and the caller drives backpressure with
 * `pause()`/`resume()`, as undici's own `api-request.js` does on `push() === false`.
 */
import type { IncomingHttpHeaders } from 'node:http';

import type { Dispatcher } from 'undici';

import { handOver } from '../../common/handed-over.js';
import type { TlsSettings } from './http-dispatcher.js';
import { startSocketAttempt } from './socket-attempt.js';

/** What one request needs. */
export interface AttemptRequest {
  readonly dispatcher: Dispatcher;
  readonly url: URL;
  readonly method: 'GET' | 'HEAD';
  readonly headers: Readonly<Record<string, string>>;
}

/** Callbacks of one attempt; after `onEnd` or `onError` nothing else is called. */
export interface AttemptHandlers {
  onStart(status: number, headers: IncomingHttpHeaders, statusText: string): void;
  onData(chunk: Buffer): void;
  onEnd(): void;
  onError(err: Error): void;
}

/** A running request. */
export interface Attempt {
  pause(): void;
  resume(): void;
  /** Stops the request; `onError(reason)` is called at once unless it already settled. */
  abort(reason: Error): void;
  readonly settled: boolean;
}

/** Starts one request; failures arrive through `handlers.onError`, never as a throw. */
export function startAttempt(req: AttemptRequest, handlers: AttemptHandlers): Attempt {
  let controller: Dispatcher.DispatchController | undefined;
  let settled = false;
  let pendingAbort: Error | undefined;
  let wantPaused = false;

  const settle = (err?: Error): void => {
    if (settled) return;
    settled = true;
    if (err === undefined) handlers.onEnd();
    else handlers.onError(err);
  };

  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (pendingAbort !== undefined) c.abort(pendingAbort);
      else if (wantPaused) c.pause();
    },
    onResponseStart(_c, status, headers, statusMessage) {
      if (!settled) handlers.onStart(status, headers, statusMessage ?? '');
    },
    onResponseData(_c, chunk) {
      // A socket read of its own that undici keeps no view of: the last consumer may free it
      // once written (common/handed-over.ts); a read holding more than body bytes is refused.
      handOver(chunk);
      if (!settled) handlers.onData(chunk);
    },
    onResponseEnd() {
      settle();
    },
    onResponseError(_c, err) {
      settle(err);
    },
  };

  try {
    req.dispatcher.dispatch(
      {
        origin: req.url.origin,
        path: `${req.url.pathname}${req.url.search}`,
        method: req.method,
        headers: req.headers,
      },
      handler,
    );
  } catch (err) {
    queueMicrotask(() => settle(err instanceof Error ? err : new Error(String(err))));
  }

  return {
    pause() {
      wantPaused = true;
      if (controller !== undefined && !controller.paused && !settled) controller.pause();
    },
    resume() {
      wantPaused = false;
      if (controller?.paused === true && !settled) controller.resume();
    },
    abort(reason) {
      if (settled) return;
      if (controller === undefined) pendingAbort = reason;
      else controller.abort(reason);
      settle(reason);
    },
    get settled() {
      return settled;
    },
  };
}

/**
 * How a request travels: through an undici dispatcher (proxies, keep-alive for ranged reads), or
 * on a socket of its own with these TLS settings (socket-attempt.ts: HEAD and GET without a proxy).
 */
export type HttpTransport = { readonly dispatcher: Dispatcher } | { readonly tls: TlsSettings };

/** Starts one request on `transport`; failures arrive through `handlers.onError`. */
export function startRequest(
  transport: HttpTransport,
  req: Omit<AttemptRequest, 'dispatcher'>,
  handlers: AttemptHandlers,
): Attempt {
  return 'dispatcher' in transport
    ? startAttempt({ ...req, dispatcher: transport.dispatcher }, handlers)
    : startSocketAttempt({ ...req, tls: transport.tls }, handlers);
}
