// SPDX-License-Identifier: Apache-2.0
/**
 * The upload benchmark's baseline server (upload-section.ts): a plain HTTP server on 127.0.0.1
 * that writes the body of every PUT or POST to the file named by its argument and answers 200
 * once the bytes are on disk (fdatasync), as our synchronous upload answers after its fsync.
 * Prints one JSON line `{"url":...}` when listening; ends on SIGTERM or SIGINT.
 *
 *   node dist/test/bench/http-sink.js TARGET
 */
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';

const target = process.argv[2];
if (target === undefined) throw new Error('usage: http-sink TARGET');

async function receive(body: NodeJS.ReadableStream): Promise<void> {
  await pipeline(body, createWriteStream(target ?? ''));
  const fh = await open(target ?? '', 'r+');
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

const server = createServer((req, res) => {
  receive(req).then(
    () => res.end('ok\n'),
    (err: unknown) => {
      process.stderr.write(`http-sink: ${err instanceof Error ? err.message : String(err)}\n`);
      res.destroy();
    },
  );
});
server.requestTimeout = 0;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
process.stdout.write(
  `${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`,
);
const stop = (): void => {
  server.close();
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
