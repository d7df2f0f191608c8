// SPDX-License-Identifier: Apache-2.0
/**
 * A tiny HTTP file server on 127.0.0.1 (port 0) for the native tests: GET and HEAD of one file,
 * honouring `Range: bytes=a-b` with 206 unless `ranges` is false (then it always sends 200 and
 * the whole file, like servers without range support). Counts requests.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { RangeReader } from '../types.js';

/** A running server. */
export interface RangeServer {
  readonly url: string;
  /** Requests served so far. */
  readonly requests: () => number;
  close(): Promise<void>;
}

/** Serves `path` until `close`. */
export async function serveFile(path: string, ranges: boolean): Promise<RangeServer> {
  const { size } = await stat(path);
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (ranges && m !== null) {
      const start = Number(m[1]);
      const end = Math.min(Number(m[2]), size - 1);
      if (start > end) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      res.writeHead(206, {
        'content-length': end - start + 1,
        'content-range': `bytes ${start}-${end}/${size}`,
        'accept-ranges': 'bytes',
      });
      if (req.method === 'HEAD') res.end();
      else createReadStream(path, { start, end }).pipe(res);
      return;
    }
    res.writeHead(200, {
      'content-length': size,
      ...(ranges ? { 'accept-ranges': 'bytes' } : { 'accept-ranges': 'none' }),
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(path).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/image.qcow2`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err === undefined ? resolve() : reject(err)));
      }),
  };
}

/** A {@link RangeReader} over HTTP Range requests (fetch), for the tests. */
export async function httpRangeReader(url: string): Promise<RangeReader> {
  const head = await fetch(url, { method: 'HEAD' });
  const size = Number(head.headers.get('content-length'));
  return {
    size,
    async read(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
      const res = await fetch(url, {
        headers: { range: `bytes=${offset}-${offset + length - 1}` },
        ...(signal === undefined ? {} : { signal }),
      });
      if (res.status !== 206) throw new Error(`expected 206, got ${res.status}`);
      const buf = Buffer.from(await res.arrayBuffer());
      if (buf.length !== length) throw new Error(`short range: ${buf.length} of ${length}`);
      return buf;
    },
  };
}
