// SPDX-License-Identifier: Apache-2.0
/**
 * The registry data source: a container disk (`docker://host/repo:tag`) streamed straight out of
 * its image layer.
 *
 * Sequence of phases:
 * 1. `info()` pings `/v2/`, authenticates, resolves the manifest (choosing the platform in an
 *    index), reads the image config (bootc refused, `*KUBEVIRT_IO_*` env vars become labels), then
 *    walks the layers from the last to the first until it meets the visible `disk/` file, and
 *    stops there with the layer's socket paused by backpressure. `length` is the file's size.
 * 2. `stream()` hands over the disk file's bytes exactly as stored (a `.qcow2`, `.raw.xz`, ...;
 *    the pipeline sniffs and converts), then reads the rest of the layer blob so its digest is
 *    checked: a mismatch fails the stream with `CDI_REGISTRY_DIGEST_MISMATCH` instead of ending it.
 * 3. `close()` tears everything down; idempotent.
 *
 * No temporary copy is ever made: walking top-down, the layers above the disk's layer are read
 * and dropped (they only tell what they hide), the layers below it are never fetched. See
 * docs/adr/0005-registry-streaming.md.
 */
import { Readable } from 'node:stream';
import { interceptors, type Dispatcher } from 'undici';
import {
  CdiError,
  ErrorCodes,
  errorMessage,
  isCdiError,
  isRetryable,
} from '../../../common/errors.js';
import { PullMethods, type PullMethod } from '../../../common/contract.js';
import { silentLogger, type Logger } from '../../../common/logger.js';
import type { DataSource, SourceInfo, TransportOptions } from '../types.js';
import type { RegistryCredentials } from './auth.js';
import { StallBudget } from '../http-limits.js';
import { openBlobReader } from './blob-reader.js';
import { RegistryClient } from './client.js';
import {
  classifyEntry,
  isDiskCandidate,
  openLayer,
  OverlayTracker,
  type OpenLayer,
  type TarEntry,
} from './layers.js';
import {
  bootcLabel,
  choosePlatform,
  envsToLabels,
  machineArchitecture,
  normalizeArchitecture,
  parseImageConfig,
  parseManifest,
  type Descriptor,
} from './manifest.js';
import {
  formatImageReference,
  isInsecureRegistry,
  manifestReference,
  parseImageReference,
  type ImageReference,
} from './reference.js';
import { buildDispatcher, type ProxyOptions } from '../http-dispatcher.js';

/** CDI's words when no disk is found (users search for them). */
export const NO_DISK_MESSAGE = 'Failed to find VM disk image file in the container image';
/** CDI's prefix for source-open failures (Running reason `ImagePullFailed`). */
export const PULL_FAILED_PREFIX = 'failed to pull image';

/** Redirects followed on registry requests (blob GETs go to object storage). */
const MAX_REDIRECTIONS = 5;

/** Options of {@link RegistrySource}. */
export interface RegistrySourceOptions {
  /** `docker://host[:port]/repo[:tag|@sha256:digest]`. */
  readonly url: string;
  /** Cert dir, insecure TLS, credentials (`accessKeyId` = user name, `secretKey` = password). */
  readonly transport?: TransportOptions;
  /** Wanted architecture in an index (`--arch`, IMPORTER_REGISTRY_IMAGE_ARCHITECTURE); default this machine's. */
  readonly architecture?: string;
  /** CDIConfig `insecureRegistries`: `host[:port]` entries allowed over plain HTTP or unverified TLS. */
  readonly insecureRegistries?: readonly string[];
  /** `node` is refused: the kubelet pulls such images (see importer/cli/node-pull.ts). */
  readonly pullMethod?: PullMethod;
  /** CDIConfig `importProxy` (http_proxy, https_proxy, no_proxy), as for the http source. */
  readonly proxy?: ProxyOptions;
  readonly logger?: Logger;
}

/** What `info()` found and `stream()` continues from. */
interface Located {
  readonly info: SourceInfo;
  readonly layer: OpenLayer;
  readonly entry: TarEntry;
}

/** A container disk from an OCI registry. */
export class RegistrySource implements DataSource {
  readonly #opts: RegistrySourceOptions;
  readonly #log: Logger;
  #dispatcher: Dispatcher | undefined;
  #located: Promise<Located> | undefined;
  #layer: OpenLayer | undefined;
  #streamed = false;
  #closed = false;

  constructor(options: RegistrySourceOptions) {
    this.#opts = options;
    this.#log = (options.logger ?? silentLogger).child({ source: 'registry' });
  }

  /** Resolves the image and locates the disk; see the phases above. */
  async info(signal: AbortSignal): Promise<SourceInfo> {
    this.#located ??= this.#locate(signal);
    return (await this.#located).info;
  }

  /** The disk file's bytes, verified against the layer digest at the end. */
  async stream(signal: AbortSignal): Promise<Readable> {
    this.#located ??= this.#locate(signal);
    const { layer, entry, info } = await this.#located;
    if (this.#streamed) {
      throw new CdiError(ErrorCodes.Internal, 'registry source stream() called twice');
    }
    this.#streamed = true;
    const out = Readable.from(streamDisk(layer, entry), { objectMode: false });
    const onAbort = (): void => {
      out.destroy(new CdiError(ErrorCodes.Aborted, `import of ${info.displayName} aborted`));
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    out.once('close', () => signal.removeEventListener('abort', onAbort));
    return out;
  }

  /** Releases the connection and the dispatcher. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#layer?.destroy();
    const d = this.#dispatcher;
    this.#dispatcher = undefined;
    await d?.destroy().catch(() => undefined);
  }

  async #locate(signal: AbortSignal): Promise<Located> {
    if (this.#opts.pullMethod === PullMethods.Node) {
      throw new CdiError(
        ErrorCodes.NotSupported,
        'registry pullMethod "node" is done by the kubelet, not by a registry source: the importer ' +
          'pod runs the image as its "server" container and reads the disk over HTTP; ' +
          'use pullMethod "pod" (the default) to read the registry directly',
      );
    }
    const ref = parseImageReference(this.#opts.url);
    const display = `docker://${formatImageReference(ref)}`;
    try {
      return await this.#resolve(ref, display, signal);
    } catch (err) {
      throw pullError(err, signal);
    }
  }

  async #resolve(ref: ImageReference, display: string, signal: AbortSignal): Promise<Located> {
    const t = this.#opts.transport ?? {};
    const insecure =
      t.insecureTls === true || isInsecureRegistry(ref, this.#opts.insecureRegistries ?? []);
    const dispatcher = await this.#buildDispatcher(t.certDir, insecure);
    this.#dispatcher = dispatcher;
    const credentials: RegistryCredentials | undefined =
      t.accessKeyId !== undefined && t.accessKeyId !== '' && t.secretKey !== undefined
        ? { username: t.accessKeyId, password: t.secretKey }
        : undefined;
    const client = new RegistryClient({
      ref,
      dispatcher,
      credentials,
      insecure,
      logger: this.#log,
      // One budget for the whole pull: every request and blob of it charges its stalls here.
      budget: new StallBudget(t.limits),
    });
    await client.ping(signal);
    const { manifest, config } = await this.#resolveImage(client, ref, signal);
    const bootc = bootcLabel(config.labels);
    if (bootc !== undefined) {
      throw new CdiError(
        ErrorCodes.RegistryBootc,
        `image ${display} is a bootable container (label ${bootc}=1); bootc images are not ` +
          'supported, import a container disk (a disk image under /disk)',
      );
    }
    const labels = envsToLabels(config.env);
    const located = await this.#findDisk(client, manifest.layers, signal);
    const info: SourceInfo = {
      length: located.entry.header.size,
      randomAccess: false,
      displayName: display,
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
    };
    return { ...located, info };
  }

  /** The shared HTTP dispatcher, following redirects (registries send blob GETs to storage). */
  async #buildDispatcher(certDir: string | undefined, insecureTls: boolean): Promise<Dispatcher> {
    const base = await buildDispatcher({
      ...(certDir === undefined ? {} : { certDir }),
      ...(this.#opts.proxy === undefined ? {} : { proxy: this.#opts.proxy }),
      insecureTls,
      logger: this.#log,
    });
    return base.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }));
  }

  async #resolveImage(
    client: RegistryClient,
    ref: ImageReference,
    signal: AbortSignal,
  ): Promise<{
    manifest: { layers: readonly Descriptor[] };
    config: ReturnType<typeof parseImageConfig>;
  }> {
    const requested = this.#opts.architecture ?? '';
    const explicitArch = requested !== '';
    const wanted = explicitArch ? requested : machineArchitecture();
    const top = await client.getManifest(manifestReference(ref), signal);
    let doc = parseManifest(top.bytes, top.mediaType);
    if (doc.kind === 'index') {
      const chosen = choosePlatform(doc.manifests, { architecture: wanted, os: 'linux' });
      this.#log.info('chose image from index', { architecture: wanted, digest: chosen.digest });
      const m = await client.getManifest(chosen.digest, signal);
      doc = parseManifest(m.bytes, m.mediaType);
      if (doc.kind !== 'image') {
        throw new CdiError(ErrorCodes.RegistryPullFailed, 'index entry is itself an index');
      }
    }
    const config = parseImageConfig(await client.getSmallBlob(doc.config.digest, signal));
    if (
      config.architecture !== undefined &&
      config.architecture !== '' &&
      normalizeArchitecture(config.architecture) !== normalizeArchitecture(wanted)
    ) {
      const msg = `manifest image architecture ${config.architecture} doesn't match requested architecture ${wanted}`;
      if (explicitArch) throw new CdiError(ErrorCodes.RegistryArchNotFound, msg);
      this.#log.warn(`${msg}; importing anyway (no architecture was requested)`);
    }
    return { manifest: doc, config };
  }

  /** Walks the layers from the last to the first; see layers.ts. */
  async #findDisk(
    client: RegistryClient,
    layers: readonly Descriptor[],
    signal: AbortSignal,
  ): Promise<{ layer: OpenLayer; entry: TarEntry }> {
    const overlay = new OverlayTracker();
    for (let i = layers.length - 1; i >= 0; i--) {
      const descriptor = layers[i] as Descriptor;
      const blob = openBlobReader({
        client,
        digest: descriptor.digest,
        size: descriptor.size,
        signal,
        logger: this.#log,
        budget: client.budget,
      });
      const layer = openLayer(descriptor, blob, signal);
      this.#layer = layer;
      for (let entry = await layer.next(); entry !== undefined; entry = await layer.next()) {
        const kind = classifyEntry(entry.header.name, entry.header.type);
        if (isDiskCandidate(kind) && !overlay.isHidden(kind.path)) {
          this.#log.info('streaming the disk straight from its layer, no temporary copy', {
            file: kind.path,
            bytes: entry.header.size,
            layer: `${i + 1}/${layers.length}`,
            digest: descriptor.digest,
          });
          return { layer, entry };
        }
        overlay.record(kind);
        entry.resume();
      }
      await layer.done;
      overlay.endLayer();
      this.#layer = undefined;
    }
    throw new CdiError(ErrorCodes.RegistryNoDisk, NO_DISK_MESSAGE);
  }
}

/** Yields the disk entry's bytes, then finishes the layer so its digest is checked. */
async function* streamDisk(layer: OpenLayer, entry: TarEntry): AsyncGenerator<Buffer> {
  let finished = false;
  try {
    for await (const chunk of entry as AsyncIterable<Buffer>) yield chunk;
    // The rest of the blob: later entries are skipped, the digest check needs every byte.
    for (let e = await layer.next(); e !== undefined; e = await layer.next()) e.resume();
    await layer.done;
    finished = true;
  } catch (err) {
    layer.destroy();
    // The layer pipeline's first error (digest mismatch, corrupt gzip) is the cause to report.
    const first = await layer.done.then(
      () => undefined,
      (e: unknown) => (isCdiError(e) ? e : undefined),
    );
    throw first ?? (isCdiError(err) ? err : wrapLayer(err, layer.descriptor.digest));
  } finally {
    if (!finished) layer.destroy();
  }
}

function wrapLayer(err: unknown, digest: string): CdiError {
  return new CdiError(
    ErrorCodes.RegistryPullFailed,
    `reading layer ${digest}: ${errorMessage(err)}`,
    {
      cause: err,
      retryable: isRetryable(err),
    },
  );
}

/** Puts failures of the resolve phase in CDI's words ("failed to pull image: ..."). */
function pullError(err: unknown, signal: AbortSignal): CdiError {
  if (signal.aborted) {
    return new CdiError(ErrorCodes.Aborted, 'registry import aborted', { cause: err });
  }
  if (isCdiError(err)) {
    if (err.code !== ErrorCodes.RegistryPullFailed) return err;
    return new CdiError(err.code, `${PULL_FAILED_PREFIX}: ${err.message}`, {
      cause: err,
      retryable: err.retryable,
      ...(err.httpStatus === undefined ? {} : { httpStatus: err.httpStatus }),
      ...(err.details === undefined ? {} : { details: err.details }),
    });
  }
  return new CdiError(
    ErrorCodes.RegistryPullFailed,
    `${PULL_FAILED_PREFIX}: ${errorMessage(err)}`,
    {
      cause: err,
      retryable: isRetryable(err),
    },
  );
}
