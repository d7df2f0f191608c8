// SPDX-License-Identifier: Apache-2.0
import { Readable } from 'node:stream';

/** What {@link peekHead} returns: the head and the stream to read from now on. */
export interface PeekedStream {
  readonly head: Buffer;
  /** The whole content again, head included. */
  readonly stream: Readable;
}

/**
 * Reads up to `bytes` from the start of `stream` without losing them: they are put back with
 * `unshift`, so the returned stream yields the whole content again. When the input is shorter than
 * `bytes` and has already ended (an unshift after 'end' is lost), a new stream over the bytes is
 * returned instead. Rejects if the stream errors first.
 */
export async function peekHead(stream: Readable, bytes: number): Promise<PeekedStream> {
  const parts: Buffer[] = [];
  let have = 0;
  let ended = false;
  let unshifted = false;
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onReadable = (): void => {
      let chunk: unknown;
      while (have < bytes && (chunk = stream.read()) !== null) {
        const buf = chunk as Buffer;
        parts.push(buf);
        have += buf.length;
      }
      if (have >= bytes) {
        cleanup();
        // Unshift now, in the same tick as the read: if that read drained an ended stream, 'end'
        // is already scheduled and would fire (losing the bytes) before an awaiting caller resumes.
        stream.unshift(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
        unshifted = true;
        resolve();
      }
    };
    const onEnd = (): void => {
      ended = true;
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      if (stream.readableEnded) resolve();
      else reject(stream.errored ?? new Error('stream closed before its header could be read'));
    };
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
    onReadable();
  });
  const all = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  if (ended) return { head: all, stream: Readable.from(all.length > 0 ? [all] : []) };
  if (!unshifted && all.length > 0) stream.unshift(all);
  // A copy: the chunk itself goes on downstream, whose last consumer may free it (handed-over.ts).
  return { head: Buffer.from(all.subarray(0, bytes)), stream };
}
