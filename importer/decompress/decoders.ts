// SPDX-License-Identifier: Apache-2.0
import type { Duplex } from 'node:stream';
import { constants as zlibConstants, createGunzip } from 'node:zlib';
import { ZstdDecoder } from './zstd-decoder.js';
import type { CompressionFormat } from '../format/sniff.js';
import { ChildProcessDecoder } from './child-process-decoder.js';

/** Output chunk of the in-process decoders: large chunks keep per-chunk work off the profile. */
const DECODER_CHUNK_BYTES = 1 << 20;

/**
 * Creates the streaming decoder for one compression format. Each choice was measured (ADR 0002):
 * - gzip: node's zlib, with 1 MiB output chunks (faster than GNU gzip; pigz cannot decode in parallel);
 * - zstd: zstd-napi's binding in-process, decoding one 1 MiB block per read (backpressure);
 * - xz: the `xz` tool with `-T2`, which decodes multi-block streams on both cores;
 * - lz4 and bzip2: the `lz4` and `bzip2` tools.
 * Concatenated gzip members and zstd frames are decoded as one stream, as the tools do.
 */
export function createDecoder(format: CompressionFormat): Duplex {
  switch (format) {
    case 'gzip':
      return createGunzip({
        chunkSize: DECODER_CHUNK_BYTES,
        finishFlush: zlibConstants.Z_SYNC_FLUSH,
      });
    case 'zstd':
      return new ZstdDecoder();
    case 'xz':
      return new ChildProcessDecoder({ command: 'xz', args: ['-dc', '-T2', '-q'], format });
    case 'lz4':
      return new ChildProcessDecoder({ command: 'lz4', args: ['-dc', '-q'], format });
    case 'bzip2':
      return new ChildProcessDecoder({ command: 'bzip2', args: ['-dc', '-q'], format });
  }
}
