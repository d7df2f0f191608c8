// SPDX-License-Identifier: Apache-2.0
/**
 * What the sequential converters (qcow2 in qcow2-stream.ts, the block-map formats in
 * block-map-stream.ts) share: a Writable whose `result` settles exactly once — resolved by the
 * subclass's `finishStream()` at the end, rejected with a CdiError on failure, abort or an early
 * destroy — and whose teardown drains the work pool and deletes the spill file. A subclass
 * decides, chunk by chunk, when a window is worth processing (`accept`), and processes it; both
 * write the extents they have placed through {@link StreamConverterBase.runChunks}.
 */
import { Writable } from 'node:stream';

import { CdiError, ErrorCodes } from '../common/errors.js';
import { Chunker, hostRanges } from './chunker.js';
import { toConvertError } from './errors.js';
import { ExtentKind, flattenExtents, type Extent } from './extents.js';
import {
  StatsCounter,
  type ChunkSource,
  type ItemWriter,
  type LentChunkSource,
} from './random-access.js';
import { SpillFile } from './spill-file.js';
import type { ConvertStats } from './types.js';
import { WorkPool } from './work-pool.js';

/** Chunks in flight on the libuv pool. */
const CONCURRENCY = 4;

/** The gathered parts as one buffer (no copy for a single part). */
export function joinParts(parts: readonly Buffer[]): Buffer {
  const [first] = parts;
  return parts.length === 1 && first !== undefined ? first : Buffer.concat(parts);
}

/**
 * Takes from `expected` (sorted by host offset) the extents whose host bytes lie in a window
 * ending at `end`, removing them. A data extent crossing the end is split, its rest staying first
 * in `expected`; any other extent crossing it (a compressed cluster) stays whole for the next
 * window, and `carry` is its offset. At `eof` everything starting before `end` is taken whole.
 */
export function takeWindowExtents(
  expected: Extent[],
  end: number,
  eof: boolean,
): { readonly batch: Extent[]; readonly carry: number | undefined } {
  const batch: Extent[] = [];
  let taken = 0;
  let carry: number | undefined;
  for (const e of expected) {
    if (e.host >= end) break;
    const crosses = !eof && e.host + e.hostLength > end;
    if (crosses && e.kind !== ExtentKind.Data) {
      carry = e.host;
      break;
    }
    if (crosses) {
      const part = end - e.host;
      batch.push({ ...e, length: part, hostLength: part });
      expected[taken] = {
        ...e,
        guest: e.guest + part,
        length: e.length - part,
        host: end,
        hostLength: e.length - part,
      };
      break;
    }
    batch.push(e);
    taken++;
  }
  expected.splice(0, taken);
  return { batch, carry };
}

/** See the module comment. */
export abstract class StreamConverterBase extends Writable {
  /** Settles when the conversion ends; rejects with a CdiError. */
  readonly result: Promise<ConvertStats>;
  protected readonly stats = new StatsCounter();
  protected readonly spill: SpillFile;
  protected readonly pool = new WorkPool(CONCURRENCY);
  readonly #label: string;
  readonly #signal: AbortSignal | undefined;
  readonly #resolve: (s: ConvertStats) => void;
  readonly #reject: (e: unknown) => void;

  /** `label` names the format in messages (`qcow2 conversion aborted`). */
  constructor(
    label: string,
    options: { readonly spillDir: string; readonly signal?: AbortSignal },
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.#label = label;
    this.#signal = options.signal;
    this.spill = new SpillFile(options.spillDir);
    // The executor runs at once, so both are the promise's own functions before the fields are set.
    let resolve: (s: ConvertStats) => void = () => undefined;
    let reject: (e: unknown) => void = () => undefined;
    this.result = new Promise<ConvertStats>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.#resolve = resolve;
    this.#reject = reject;
    this.result.catch(() => undefined);
    const { signal } = options;
    if (signal !== undefined) {
      const onAbort = (): void => {
        const err = new CdiError(ErrorCodes.Aborted, `${label} conversion aborted`);
        this.#reject(err);
        // Emit 'error' only to a listener (pipeline attaches one); an unheard error would crash.
        this.destroy(this.listenerCount('error') > 0 ? err : undefined);
      };
      if (signal.aborted) queueMicrotask(onAbort);
      else signal.addEventListener('abort', onAbort, { once: true });
      this.once('close', () => signal.removeEventListener('abort', onAbort));
    }
  }

  /** Takes one chunk of the image; true when a window should be processed now. */
  protected abstract accept(chunk: Buffer): boolean;
  /** Processes what was gathered; `eof` at the end of the stream. */
  protected abstract processWindow(eof: boolean): Promise<void>;
  /** Processes the rest, writes what was deferred, and reports. */
  protected abstract finishStream(): Promise<ConvertStats>;

  /**
   * Writes `extents` (any order; sorted here) through the work pool, chunk by chunk, with the
   * host bytes `source` gives for each chunk.
   */
  protected async runChunks(
    writer: ItemWriter,
    extents: Extent[],
    source: (chunkExtents: Float64Array) => LentChunkSource | Promise<LentChunkSource>,
  ): Promise<void> {
    if (extents.length === 0) return;
    extents.sort((a, b) => a.guest - b.guest);
    const chunker = new Chunker({ contiguousOnly: true });
    const items = [...chunker.push(flattenExtents(extents)), ...chunker.flush()];
    for (const item of items) {
      if (item.type !== 'chunk') continue;
      const src = await source(item.extents);
      try {
        await this.pool.run(() => writer.chunk(item, src).finally(() => src.release?.()));
      } catch (err) {
        // Not started (an earlier chunk failed): nothing reads the pieces.
        src.release?.();
        throw err;
      }
    }
  }

  /** Host bytes of a chunk read back from the spill file, for a stream that ended at `end`. */
  protected async fromSpill(chunkExtents: Float64Array, end: number): Promise<ChunkSource> {
    const ranges = hostRanges(chunkExtents, end, 0);
    const pieces = await Promise.all(ranges.map((r) => this.spill.read(r.offset, r.length, end)));
    return { pieces, pieceOffsets: ranges.map((r) => r.offset) };
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.stats.bytesRead += chunk.length;
    if (!this.accept(chunk)) {
      cb();
      return;
    }
    this.processWindow(false).then(
      () => cb(),
      (err: unknown) => cb(this.#fail(err)),
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.finishStream().then(
      (stats) => {
        cb();
        this.#resolve(stats);
      },
      (err: unknown) => cb(this.#fail(err)),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    void this.pool
      .drain()
      .catch(() => undefined)
      .then(() => this.spill.close())
      .then(
        () => {
          // After a normal finish `result` is settled and this rejection is a no-op; otherwise
          // (destroyed early, with or without an error) it must not stay pending.
          this.#reject(
            err === null
              ? new CdiError(
                  ErrorCodes.Aborted,
                  `${this.#label} stream converter destroyed before the end`,
                )
              : toConvertError(err),
          );
          cb(err);
        },
        (closeErr: unknown) => cb(err ?? toConvertError(closeErr)),
      );
  }

  #fail(err: unknown): CdiError {
    const e = toConvertError(err, this.#signal);
    this.#reject(e);
    return e;
  }
}
