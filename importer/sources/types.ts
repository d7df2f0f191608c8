// SPDX-License-Identifier: Apache-2.0
import type { Readable } from 'node:stream';

import type { TransferLimits } from './http-limits.js';

/**
 * What a data source tells before any byte moves (CDI's `Info` phase).
 */
export interface SourceInfo {
  /** Length in bytes of the bytes as transferred (before decompression), when known. */
  readonly length: number | undefined;
  /** True when {@link DataSource.readRange} may be used (HTTP `Accept-Ranges: bytes`, S3, files). */
  readonly randomAccess: boolean;
  /** Where the bytes come from, credentials redacted; for logs and messages. */
  readonly displayName: string;
  /** Labels to report in the termination message (registry `*_KUBEVIRT_IO_*` env vars). */
  readonly labels?: Readonly<Record<string, string>>;
  /** A local path holding exactly these bytes, when the source is a file (lets converters seek). */
  readonly localPath?: string;
}

/**
 * A data source (CDI's `DataSourceInterface`), one module per kind under `importer/sources/`.
 *
 * Sequence of phases: `info()` first (opens and learns the length), then either `stream()` once or
 * any number of `readRange()` calls, then `close()` (idempotent). Every call takes the one
 * AbortSignal of the transfer.
 */
export interface DataSource {
  info(signal: AbortSignal): Promise<SourceInfo>;
  /**
   * The whole content, in order, from byte 0. Implementations resume dropped connections
   * themselves where the protocol allows, so the consumer sees one uninterrupted byte stream or
   * an error.
   */
  stream(signal: AbortSignal): Promise<Readable>;
  /** Reads exactly `length` bytes at `offset`; only when `info().randomAccess`. */
  readRange?(offset: number, length: number, signal: AbortSignal): Promise<Buffer>;
  close(): Promise<void>;
}

/** TLS and auth settings shared by the network sources. */
export interface TransportOptions {
  /** Directory whose every file is a PEM CA bundle to trust (CDI `IMPORTER_CERT_DIR`). */
  readonly certDir?: string;
  /** Skip TLS verification (and allow plain HTTP for registries). */
  readonly insecureTls?: boolean;
  readonly accessKeyId?: string;
  readonly secretKey?: string;
  /** Extra request headers, `Name: value` strings (CDI `IMPORTER_EXTRA_HEADER_*`). */
  readonly extraHeaders?: readonly string[];
  /** Idle timeout per attempt and stall budget of the transfer (HTTP, S3, registry; default 60 s and 4 min). */
  readonly limits?: TransferLimits;
}
