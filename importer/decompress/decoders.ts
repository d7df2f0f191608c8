// SPDX-License-Identifier: Apache-2.0
import type { Duplex } from 'node:stream';
import type { CompressionFormat } from '../format/sniff.js';
import { ChildProcessDecoder } from './child-process-decoder.js';
import { NativeDecoder } from './native-decoder.js';
import { ZstdDecoder } from './zstd-decoder.js';

/**
 * Creates the streaming decoder for one compression format. Each choice was measured (ADR 0002 and
 * ADR 0035):
 * - gzip: ISA-L's inflate in the native addon (several times faster than node's zlib and pigz);
 * - zstd: zstd-napi's binding in-process, decoding one 1 MiB block per read (backpressure);
 * - xz: liblzma's multi-threaded decoder in the native addon, multi-block streams on both cores;
 * - lz4 and bzip2: the `lz4` and `bzip2` tools.
 * Concatenated gzip members, xz streams and zstd frames are decoded as one stream, as the tools do.
 */
export function createDecoder(format: CompressionFormat): Duplex {
  switch (format) {
    case 'gzip':
      return new NativeDecoder('gzip');
    case 'zstd':
      return new ZstdDecoder();
    case 'xz':
      return new NativeDecoder('xz');
    case 'lz4':
      return new ChildProcessDecoder({ command: 'lz4', args: ['-dc', '-q'], format });
    case 'bzip2':
      return new ChildProcessDecoder({ command: 'bzip2', args: ['-dc', '-q'], format });
  }
}
