// SPDX-License-Identifier: Apache-2.0
import { pipeline, type Readable } from 'node:stream';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import { peekHead } from '../format/peek.js';
import {
  isCompression,
  sniffFormat,
  SNIFF_BYTES,
  type CompressionFormat,
  type ImageFormat,
} from '../format/sniff.js';
import { createDecoder } from './decoders.js';

/** Nesting deeper than this is refused: real images are wrapped once, rarely twice. */
const MAX_COMPRESSION_LAYERS = 4;

/** The decompressed stream and what was found under the wrappers. */
export interface UnwrappedStream {
  /** Decompressed content, head included. */
  readonly stream: Readable;
  /** Its first bytes (up to {@link SNIFF_BYTES}). */
  readonly head: Buffer;
  /** The image format found under the compression layers. */
  readonly format: ImageFormat;
  /** Compression layers, outermost first. */
  readonly compressions: readonly CompressionFormat[];
}

/**
 * Sniffs the stream and pushes a decoder for every compression layer, the loop of CDI's
 * `format-readers.go`: it stops at the first non-compressed format. Errors of any layer surface on
 * the returned stream.
 */
export async function unwrapCompression(input: Readable): Promise<UnwrappedStream> {
  let stream = input;
  const compressions: CompressionFormat[] = [];
  for (;;) {
    const peeked = await peekHead(stream, SNIFF_BYTES);
    stream = peeked.stream;
    const format = sniffFormat(peeked.head);
    if (format === undefined || !isCompression(format)) {
      return { stream, head: peeked.head, format: format ?? 'raw', compressions };
    }
    if (compressions.length >= MAX_COMPRESSION_LAYERS) {
      throw new CdiError(
        ErrorCodes.FormatUnsupported,
        `more than ${MAX_COMPRESSION_LAYERS} nested compression layers (${compressions.join(', ')}, ...)`,
      );
    }
    compressions.push(format);
    // The callback form links the two: an error or early close on either side destroys both, and
    // the decoder carries the error to whoever reads it, so the callback has nothing left to do.
    stream = pipeline(stream, createDecoder(format), () => undefined);
  }
}
