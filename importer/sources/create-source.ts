// SPDX-License-Identifier: Apache-2.0
import { SourceKinds, type PullMethod, type SourceKind } from '../../common/contract.js';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { S3SourceOptions } from './s3.js';
import type { DataSource, TransportOptions } from './types.js';

/** Everything needed to build any source, from CLI flags or the pod's env. */
export interface SourceSpec {
  readonly kind: SourceKind;
  readonly url: string;
  readonly transport: TransportOptions;
  readonly proxy?: {
    readonly httpProxy?: string;
    readonly httpsProxy?: string;
    readonly noProxy?: string;
  };
  readonly architecture?: string;
  readonly pullMethod?: PullMethod;
  readonly logger: Logger;
  /** GCS: the service-account key file (absent: anonymous) and an endpoint replacing Google's. */
  readonly gcs?: { readonly credentialsFile?: string; readonly endpoint?: string };
  /** Consecutive failed HTTP attempts tolerated (default: the source's, 5); `cdi import --retries`. */
  readonly maxRetries?: number;
}

/**
 * The kind a URL implies: `http(s)://` http, `s3://` s3, `gs://` gcs, `docker://` registry, anything
 * else a local path. An explicit kind wins (CDI passes `IMPORTER_SOURCE=s3` with an endpoint URL).
 */
export function inferSourceKind(url: string, explicit?: SourceKind): SourceKind {
  if (explicit !== undefined) return explicit;
  if (/^https?:\/\//i.test(url)) return SourceKinds.Http;
  if (/^s3:\/\//i.test(url)) return SourceKinds.S3;
  if (/^gs:\/\//i.test(url)) return SourceKinds.Gcs;
  if (/^docker:\/\//i.test(url)) return SourceKinds.Registry;
  return SourceKinds.File;
}

/** The S3 source's options: the transport settings the spec gives, and nothing undefined. */
function s3Options(spec: SourceSpec): S3SourceOptions {
  const { transport, logger } = spec;
  return {
    url: spec.url,
    logger,
    ...(transport.accessKeyId === undefined ? {} : { accessKeyId: transport.accessKeyId }),
    ...(transport.secretKey === undefined ? {} : { secretKey: transport.secretKey }),
    ...(transport.certDir === undefined ? {} : { certDir: transport.certDir }),
    ...(transport.insecureTls === undefined ? {} : { insecureTls: transport.insecureTls }),
    ...(transport.limits === undefined ? {} : { limits: transport.limits }),
  };
}

/**
 * Builds the data source for a spec. No I/O happens until `info()`. Each kind's module is loaded
 * on demand: the AWS SDK alone costs a tenth of a second of start-up an HTTP import never needs.
 */
export async function createSource(spec: SourceSpec): Promise<DataSource> {
  const { transport, logger } = spec;
  switch (spec.kind) {
    case SourceKinds.Http:
      return new (await import('./http.js')).HttpSource({
        url: spec.url,
        transport,
        logger,
        ...(spec.proxy === undefined ? {} : { proxy: spec.proxy }),
        ...(spec.maxRetries === undefined ? {} : { maxRetries: spec.maxRetries }),
      });
    case SourceKinds.S3:
      return new (await import('./s3.js')).S3Source(s3Options(spec));
    case SourceKinds.Gcs:
      return new (await import('./gcs.js')).GcsSource({
        url: spec.url,
        transport,
        logger,
        ...(spec.gcs?.credentialsFile === undefined
          ? {}
          : { credentialsFile: spec.gcs.credentialsFile }),
        ...(spec.gcs?.endpoint === undefined ? {} : { endpoint: spec.gcs.endpoint }),
        ...(spec.proxy === undefined ? {} : { proxy: spec.proxy }),
        ...(spec.maxRetries === undefined ? {} : { maxRetries: spec.maxRetries }),
      });
    case SourceKinds.Registry:
      return new (await import('./registry/source.js')).RegistrySource({
        url: spec.url,
        transport,
        logger,
        ...(spec.architecture === undefined ? {} : { architecture: spec.architecture }),
        ...(spec.pullMethod === undefined ? {} : { pullMethod: spec.pullMethod }),
        ...(spec.proxy === undefined ? {} : { proxy: spec.proxy }),
      });
    case SourceKinds.File:
      return new (await import('./file.js')).FileSource({ path: spec.url });
    case SourceKinds.Pvc:
      return new (await import('./pvc.js')).PvcSource({ path: spec.url });
    default:
      throw new CdiError(ErrorCodes.NotSupported, `Unknown data source: ${spec.kind}`);
  }
}
