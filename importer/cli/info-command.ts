// SPDX-License-Identifier: Apache-2.0
import { stat } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatBytes } from '../../common/quantity.js';
import {
  IMAGE_FORMATS,
  isConvertibleFormat,
  isDiskImageInfo,
  sniffTrailer,
  TRAILER_BYTES,
  type BlockMapFormat,
  type DiskImageInfo,
  type ImageInfo,
  type Qcow2Info,
  type RangeReader,
} from '../../native/index.js';
import { unwrapCompression } from '../decompress/unwrap.js';
import { sniffRandomAccess, type CompressionFormat, type ImageFormat } from '../format/sniff.js';
import { createSource, inferSourceKind } from '../sources/create-source.js';
import type { DataSource } from '../sources/types.js';
import { boolFlag, parseArgs, stringFlag } from '../../common/cli/args.js';
import type { CommandContext } from '../../common/cli/context.js';

/** `cdi info` output, with qemu-img's key names where one exists. */
export interface ImageInfoReport {
  readonly filename: string;
  readonly format: ImageFormat;
  readonly 'virtual-size'?: number;
  readonly 'actual-size'?: number;
  readonly 'cluster-size'?: number;
  readonly 'backing-filename'?: string;
  readonly 'dirty-flag'?: boolean;
  /** Compression wrappers around the image, outermost first (ours). */
  readonly compression: readonly CompressionFormat[];
  readonly 'format-specific'?:
    | {
        readonly type: 'qcow2';
        readonly data: {
          readonly compat: '0.10' | '1.1';
          readonly 'compression-type': 'zlib' | 'zstd';
          readonly 'extended-l2': boolean;
          readonly encrypted: boolean;
          readonly 'external-data-file'?: string;
          readonly snapshots: number;
        };
      }
    | {
        readonly type: BlockMapFormat;
        readonly data: {
          /** vdi: dynamic/static; vhd: dynamic/fixed; vmdk: the descriptor's create type. */
          readonly subformat: string;
          /** VHD: the footer's creator application (decides how qemu sizes the disk). */
          readonly creator?: string;
        };
      };
  /** Why an import of this image would be refused (ours). */
  readonly refusal?: string;
}

/** `cdi info SOURCE [--json]`. */
export async function infoCommand(argv: readonly string[], ctx: CommandContext): Promise<number> {
  const args = parseArgs(
    argv,
    { json: 'boolean', 'insecure-tls': 'boolean', 'cert-dir': 'string', 'source-kind': 'string' },
    { min: 1, max: 1, names: 'SOURCE' },
  );
  const [url = ''] = args.positionals;
  const certDir = stringFlag(args, 'cert-dir');
  const source = await createSource({
    kind: inferSourceKind(url),
    url,
    transport: {
      insecureTls: boolFlag(args, 'insecure-tls'),
      ...(certDir === undefined ? {} : { certDir }),
    },
    proxy: ctx.proxy,
    logger: ctx.logger,
  });
  try {
    const report = await inspect(source, url, ctx.signal);
    if (boolFlag(args, 'json')) ctx.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else ctx.stdout.write(renderReport(report));
  } finally {
    await source.close();
  }
  return 0;
}

/** Inspects a source: random access when possible, else by streaming the head. */
export async function inspect(
  source: DataSource,
  filename: string,
  signal: AbortSignal,
): Promise<ImageInfoReport> {
  const info = await source.info(signal);
  // qemu-img's actual-size is what the file occupies (allocated blocks), not its length.
  const actual =
    info.localPath === undefined ? info.length : (await stat(info.localPath)).blocks * 512;
  if (info.randomAccess && source.readRange !== undefined && info.length !== undefined) {
    const readRange = source.readRange.bind(source);
    const reader: RangeReader = {
      size: info.length,
      read: (o, l, s) => readRange(o, l, s ?? signal),
    };
    const report = await inspectRandom(reader, filename, actual, signal);
    if (report !== undefined) return report;
  }
  return inspectStream(source, filename, actual, signal);
}

/** Random access: the report, or undefined for formats only a stream can tell (compressed). */
async function inspectRandom(
  reader: RangeReader,
  filename: string,
  actual: number | undefined,
  signal: AbortSignal,
): Promise<ImageInfoReport | undefined> {
  const { format, head } = await sniffRandomAccess(reader, signal);
  if (format !== undefined && isConvertibleFormat(format)) {
    const row = IMAGE_FORMATS[format];
    const refusal = row.refuseHead(head);
    if (refusal !== undefined) return refusedReport(filename, { format, ...refusal }, [], actual);
    return imageReport(filename, await row.readInfo(reader, signal), [], actual);
  }
  if (format === undefined || format === 'tar') {
    return {
      filename,
      format: 'raw',
      'virtual-size': reader.size,
      ...(actual === undefined ? {} : { 'actual-size': actual }),
      compression: [],
    };
  }
  return undefined;
}

async function inspectStream(
  source: DataSource,
  filename: string,
  actual: number | undefined,
  signal: AbortSignal,
): Promise<ImageInfoReport> {
  const unwrapped = await unwrapCompression(await source.stream(signal));
  const { compressions } = unwrapped;
  if (isConvertibleFormat(unwrapped.format)) {
    const row = IMAGE_FORMATS[unwrapped.format];
    const refusal = row.refuseHead(unwrapped.head);
    if (refusal !== undefined) {
      unwrapped.stream.destroy();
      return refusedReport(
        filename,
        { format: unwrapped.format, ...refusal },
        compressions,
        actual,
      );
    }
    const head = await readWindow(unwrapped.stream, row.headInfoBytes, signal);
    unwrapped.stream.destroy();
    return imageReport(filename, await row.readInfoFromHead(head, signal), compressions, actual);
  }
  if (unwrapped.format !== 'raw' && unwrapped.format !== 'tar') {
    unwrapped.stream.destroy();
    return {
      filename,
      format: unwrapped.format,
      compression: compressions,
      refusal: `format ${String(unwrapped.format)} is not supported yet`,
    };
  }
  // The virtual size of a compressed raw image is only known once it is decompressed; its last
  // bytes may be the footer of a fixed VHD.
  let size = 0;
  let last = Buffer.alloc(0);
  await pipeline(
    unwrapped.stream,
    new Writable({
      highWaterMark: 1 << 20,
      write: (chunk: Buffer, _e, cb) => {
        size += chunk.length;
        last = Buffer.concat([last, chunk.subarray(-TRAILER_BYTES)]).subarray(-TRAILER_BYTES);
        cb();
      },
    }),
    { signal },
  );
  const trailer = unwrapped.format === 'raw' ? sniffTrailer(last, size) : undefined;
  if (trailer !== undefined) return imageReport(filename, trailer, compressions, actual);
  return {
    filename,
    format: 'raw',
    'virtual-size': size,
    ...(actual === undefined ? {} : { 'actual-size': actual }),
    compression: compressions,
  };
}

async function readWindow(
  stream: NodeJS.ReadableStream,
  max: number,
  signal: AbortSignal,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  let have = 0;
  for await (const chunk of stream) {
    if (signal.aborted) break;
    const buf = chunk as Buffer;
    parts.push(buf);
    have += buf.length;
    if (have >= max) break;
  }
  return Buffer.concat(parts).subarray(0, max);
}

function imageReport(
  filename: string,
  info: ImageInfo,
  compression: readonly CompressionFormat[],
  actual: number | undefined,
): ImageInfoReport {
  return isDiskImageInfo(info)
    ? diskReport(filename, info, compression, actual)
    : qcow2Report(filename, info, compression, actual);
}

function qcow2Report(
  filename: string,
  q: Qcow2Info,
  compression: readonly CompressionFormat[],
  actual: number | undefined,
): ImageInfoReport {
  return {
    filename,
    format: 'qcow2',
    'virtual-size': q.virtualSize,
    ...(actual === undefined ? {} : { 'actual-size': actual }),
    'cluster-size': q.clusterSize,
    ...(q.backingFile === undefined ? {} : { 'backing-filename': q.backingFile }),
    'dirty-flag': q.dirty,
    compression,
    'format-specific': {
      type: 'qcow2',
      data: {
        compat: q.version === 2 ? '0.10' : '1.1',
        'compression-type': q.compressionType,
        'extended-l2': q.extendedL2,
        encrypted: q.encrypted,
        ...(q.externalDataFile === undefined ? {} : { 'external-data-file': q.externalDataFile }),
        snapshots: q.snapshotCount,
      },
    },
    ...(q.refusal === undefined ? {} : { refusal: q.refusal.message }),
  };
}

function diskReport(
  filename: string,
  d: DiskImageInfo,
  compression: readonly CompressionFormat[],
  actual: number | undefined,
): ImageInfoReport {
  return {
    filename,
    format: d.format,
    'virtual-size': d.virtualSize,
    ...(actual === undefined ? {} : { 'actual-size': actual }),
    ...(d.blockSize > 0 && d.subformat !== 'fixed' ? { 'cluster-size': d.blockSize } : {}),
    compression,
    'format-specific': {
      type: d.format,
      data: {
        subformat: d.subformat,
        ...(d.creator === undefined ? {} : { creator: d.creator }),
      },
    },
    ...(d.refusal === undefined ? {} : { refusal: d.refusal.message }),
  };
}

/** An image the format table refuses at sight (a VMDK descriptor): no header to report. */
function refusedReport(
  filename: string,
  refused: { readonly format: ImageFormat; readonly message: string },
  compression: readonly CompressionFormat[],
  actual: number | undefined,
): ImageInfoReport {
  return {
    filename,
    format: refused.format,
    ...(actual === undefined ? {} : { 'actual-size': actual }),
    compression,
    refusal: refused.message,
  };
}

function renderReport(r: ImageInfoReport): string {
  const lines = [`image: ${r.filename}`, `file format: ${r.format}`];
  if (r.compression.length > 0) lines.push(`compression: ${r.compression.join(', ')}`);
  if (r['virtual-size'] !== undefined)
    lines.push(`virtual size: ${formatBytes(r['virtual-size'])} (${r['virtual-size']} bytes)`);
  if (r['actual-size'] !== undefined) lines.push(`disk size: ${formatBytes(r['actual-size'])}`);
  if (r['cluster-size'] !== undefined) lines.push(`cluster_size: ${r['cluster-size']}`);
  if (r['backing-filename'] !== undefined) lines.push(`backing file: ${r['backing-filename']}`);
  const fs = r['format-specific'];
  if (fs?.type === 'qcow2') {
    lines.push('Format specific information:');
    lines.push(`    compat: ${fs.data.compat}`);
    lines.push(`    compression type: ${fs.data['compression-type']}`);
    lines.push(`    extended l2: ${String(fs.data['extended-l2'])}`);
    lines.push(`    snapshots: ${fs.data.snapshots}`);
  } else if (fs !== undefined) {
    lines.push('Format specific information:');
    lines.push(`    subformat: ${fs.data.subformat}`);
    if (fs.data.creator !== undefined) lines.push(`    creator: ${fs.data.creator}`);
  }
  if (r['dirty-flag'] === true) lines.push('dirty flag: set');
  if (r.refusal !== undefined) lines.push(`import refused: ${r.refusal}`);
  return `${lines.join('\n')}\n`;
}
