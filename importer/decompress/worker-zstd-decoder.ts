// SPDX-License-Identifier: Apache-2.0
import { createRequire } from 'node:module';
import { Duplex } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { ZERO_BLOCK } from '../sink/zero-block.js';

/** Output blocks the worker may decode ahead of the reader (1 MiB each). */
const OUTPUT_CREDITS = 4;
/** Input chunks handed to the worker before a write waits for one to be consumed. */
const INPUT_IN_FLIGHT = 4;

/** Messages from the worker. */
type FromWorker =
  | { readonly t: 'zeros'; readonly n: number }
  | { readonly t: 'data'; readonly buf: Uint8Array }
  | { readonly t: 'ack' }
  | { readonly t: 'end' }
  | { readonly t: 'error'; readonly message: string };

/**
 * The worker's code, plain CommonJS run with `eval` so that it needs no loader whether the
 * importer runs from TypeScript sources (tests) or from `dist/`. It decodes one 1 MiB block per
 * output credit, reports all-zero blocks as a count instead of bytes, transfers data blocks
 * without copying, and acknowledges each input chunk once consumed.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const binding = require(workerData.bindingPath);
const BLOCK = 1 << 20;
const EMPTY = Buffer.alloc(0);
const ZERO = Buffer.alloc(BLOCK);
const dctx = new binding.DCtx();
const inputs = [];
let credits = 0, ending = false, inFrame = false, outputPending = false, spare = null, failed = false;
function pump() {
  while (!failed && credits > 0) {
    const input = inputs.length > 0 ? inputs[0] : EMPTY;
    if (input.length === 0 && !outputPending) {
      if (inputs.length > 0) { inputs.shift(); parentPort.postMessage({ t: 'ack' }); continue; }
      if (ending) { ending = false; if (inFrame) fail('zstd stream is truncated: it ends in the middle of a frame'); else parentPort.postMessage({ t: 'end' }); }
      return;
    }
    const out = spare || Buffer.allocUnsafeSlow(BLOCK);
    spare = null;
    let r;
    try { r = dctx.decompressStream(out, input); } catch (e) { fail('zstd stream is corrupt: ' + e.message); return; }
    const [remaining, produced, consumed] = r;
    if (consumed > 0 || produced > 0) inFrame = remaining !== 0;
    if (inputs.length > 0) inputs[0] = input.subarray(consumed);
    outputPending = produced === BLOCK;
    if (produced === 0) { spare = out; continue; }
    credits--;
    if (out.compare(ZERO, 0, produced, 0, produced) === 0) { spare = out; parentPort.postMessage({ t: 'zeros', n: produced }); }
    else { const view = new Uint8Array(out.buffer, 0, produced); parentPort.postMessage({ t: 'data', buf: view }, [out.buffer]); }
  }
}
function fail(message) { failed = true; parentPort.postMessage({ t: 'error', message }); }
parentPort.on('message', (m) => {
  if (m.t === 'in') inputs.push(Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength));
  else if (m.t === 'credit') credits += m.n;
  else if (m.t === 'fin') ending = true;
  pump();
});
`;

const require = createRequire(import.meta.url);

/**
 * A zstd decoder that runs on a worker thread, so decoding uses the second core while the main
 * thread downloads, hashes and writes (the `curl | zstd -d` shape, in one process). Zero blocks
 * cross the thread boundary as a length and come out as views of {@link ZERO_BLOCK}, which the
 * sparse writer skips without reading; data blocks are transferred, not copied. Backpressure both
 * ways: a write is acknowledged once the worker consumed it, and the worker decodes only as many
 * blocks ahead as it holds credits for.
 */
export class WorkerZstdDecoder extends Duplex {
  readonly #worker: Worker;
  #inFlight = 0;
  #held: ((error?: Error | null) => void) | undefined;
  #ending: ((error?: Error | null) => void) | undefined;
  #creditsOwed = 0;
  #reading = true;

  constructor() {
    super({ readableHighWaterMark: 2 << 20, writableHighWaterMark: 1 << 20 });
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { bindingPath: require.resolve('zstd-napi/binding') },
    });
    this.#worker.on('message', (m: FromWorker) => this.#onMessage(m));
    this.#worker.on('error', (err) => this.destroy(err));
    this.#worker.postMessage({ t: 'credit', n: OUTPUT_CREDITS });
  }

  #onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'zeros':
        this.#deliver(ZERO_BLOCK.subarray(0, m.n));
        return;
      case 'data':
        this.#deliver(Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength));
        return;
      case 'ack': {
        this.#inFlight--;
        const held = this.#held;
        this.#held = undefined;
        held?.();
        return;
      }
      case 'end':
        this.push(null);
        this.#ending?.();
        this.#ending = undefined;
        return;
      case 'error':
        this.destroy(new CdiError(ErrorCodes.DecompressFailed, m.message));
        return;
    }
  }

  /** Pushes a block; returns its credit now, or once the reader asks again. */
  #deliver(block: Buffer): void {
    this.#reading = this.push(block);
    if (this.#reading) this.#worker.postMessage({ t: 'credit', n: 1 });
    else this.#creditsOwed++;
  }

  override _read(): void {
    this.#reading = true;
    if (this.#creditsOwed > 0) {
      this.#worker.postMessage({ t: 'credit', n: this.#creditsOwed });
      this.#creditsOwed = 0;
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (error?: Error | null) => void): void {
    // Structured clone copies the chunk: socket buffers may be views of shared memory.
    this.#worker.postMessage({ t: 'in', buf: chunk });
    this.#inFlight++;
    if (this.#inFlight < INPUT_IN_FLIGHT) callback();
    else this.#held = callback;
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#ending = callback;
    this.#worker.postMessage({ t: 'fin' });
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    void this.#worker.terminate();
    callback(err);
  }
}
