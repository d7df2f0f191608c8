// SPDX-License-Identifier: Apache-2.0
/**
 * `?watch=true`: a chunked stream of `{"type","object"}` lines. It starts from the given
 * resourceVersion (replaying the store's history, or 410 Expired when that is compacted away),
 * or with synthetic ADDED events for the current state when none is given. Objects moving in or
 * out of the selectors become ADDED/DELETED, as on a real server. Bookmarks are sent when asked.
 */
import type { ServerResponse } from 'node:http';
import { ApiStatusError, StatusReasons } from './api-errors.js';
import type { ObjectApi } from './object-api.js';
import type { KObject } from './object.js';
import { typeKey, type ResourceType } from './resources.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { WatchTypes, type StoreEvent } from './store.js';
import { toTable } from './table.js';

/** Parameters of one watch. */
export interface WatchRequest {
  readonly type: ResourceType;
  readonly version: string;
  readonly namespace: string | undefined;
  readonly resourceVersion: string | undefined;
  readonly labelSelector: string | undefined;
  readonly fieldSelector: string | undefined;
  readonly bookmarks: boolean;
  readonly timeoutSeconds: number;
  readonly asTable: boolean;
}

/** How often a bookmark is sent to watchers that allow them. */
const BOOKMARK_INTERVAL_MS = 5_000;

/** Runs one watch until the client leaves, the timeout passes or `stop` is called. */
export function serveWatch(
  api: ObjectApi,
  req: WatchRequest,
  res: ServerResponse,
): { stop: () => void } {
  const { type } = req;
  const label = parseLabelSelector(req.labelSelector);
  const field = parseFieldSelector(req.fieldSelector);
  const matches = (o: KObject | undefined): boolean =>
    o !== undefined &&
    (req.namespace === undefined || !type.namespaced || o.metadata.namespace === req.namespace) &&
    label(o) &&
    field(o);
  const render = (o: KObject): unknown => {
    const presented = api.present(type, o, req.version);
    return req.asTable ? toTable(type, [presented]) : presented;
  };
  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Transfer-Encoding': 'chunked',
    'Cache-Control': 'no-cache',
  });
  res.flushHeaders();
  const send = (kind: string, object: unknown): void => {
    if (!res.writableEnded) res.write(`${JSON.stringify({ type: kind, object })}\n`);
  };
  const onEvent = (e: StoreEvent): void => {
    const now = matches(e.object);
    const before = matches(e.previous);
    if (e.type === WatchTypes.Deleted) {
      if (before || now) send(WatchTypes.Deleted, render(e.object));
    } else if (now && !before) send(WatchTypes.Added, render(e.object));
    else if (now && before) send(WatchTypes.Modified, render(e.object));
    else if (!now && before) send(WatchTypes.Deleted, render(e.object));
  };
  const key = typeKey(type.group, type.plural);
  const rvText = req.resourceVersion;
  if (rvText === undefined || rvText === '' || rvText === '0') {
    for (const o of api.store.list(key)) if (matches(o)) send(WatchTypes.Added, render(o));
  } else {
    const rv = Number(rvText);
    const history = Number.isInteger(rv) ? api.store.since(rv, key) : undefined;
    if (history === undefined) {
      const err = new ApiStatusError(
        410,
        StatusReasons.Expired,
        `too old resource version: ${rvText} (${api.store.oldestResumable})`,
      );
      send('ERROR', err.toStatus());
      res.end();
      return { stop: () => undefined };
    }
    for (const e of history) onEvent(e);
  }
  const unsubscribe = api.store.subscribe((e) => {
    if (e.typeKey === key) onEvent(e);
  });
  const bookmark = req.bookmarks
    ? setInterval(() => {
        send('BOOKMARK', {
          kind: type.kind,
          apiVersion: type.group === '' ? req.version : `${type.group}/${req.version}`,
          metadata: { resourceVersion: String(api.store.resourceVersion) },
        });
      }, BOOKMARK_INTERVAL_MS)
    : undefined;
  const timeout = setTimeout(() => stop(), req.timeoutSeconds * 1000);
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    unsubscribe();
    if (bookmark !== undefined) clearInterval(bookmark);
    clearTimeout(timeout);
    if (!res.writableEnded) res.end();
  };
  res.on('close', stop);
  return { stop };
}
