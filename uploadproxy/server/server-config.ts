// SPDX-License-Identifier: Apache-2.0
/**
 * The upload server pod's configuration, parsed once from CDI's environment variables
 * (CONTRIBUTING.md): every bad variable is listed in one `CDI_INVALID_CONFIG`.
 */
import { ImporterEnv, PodPaths, UploadServerEnv } from '../../common/contract.js';
import { EnvReader } from '../../common/env-reader.js';
import { parseListen, type ListenAddress } from '../protocol/listen.js';

/** See the module comment. */
export interface UploadServerConfig {
  readonly listen: ListenAddress;
  /** Undefined in `--insecure` mode only. */
  readonly tlsKeyFile: string | undefined;
  readonly tlsCertFile: string | undefined;
  readonly clientCaFile: string | undefined;
  readonly clientName: string | undefined;
  readonly imageSize: number | undefined;
  readonly filesystemOverhead: number;
  readonly preallocation: boolean;
  /** Explicit target path (`DESTINATION`), else chosen from the data dir and block device. */
  readonly destination: string | undefined;
  readonly dataDir: string;
  readonly blockDevice: string;
  readonly scratchDir: string;
  readonly terminationLog: string;
  /** Where received bytes wait for the pipeline. */
  readonly journal: 'memory' | 'disk';
  /** `OWNER_UID`: labels the progress metric the controller scrapes; none served when unset. */
  readonly ownerUid: string | undefined;
}

/** Parses the environment; `insecure` allows running without TLS material. */
export function loadUploadServerConfig(
  env: Readonly<Record<string, string | undefined>>,
  insecure: boolean,
): UploadServerConfig {
  const reader = new EnvReader(env);
  const { problems } = reader;
  const get = (name: string): string | undefined => reader.get(name);
  const tlsKeyFile = get(UploadServerEnv.TlsKeyFile);
  const tlsCertFile = get(UploadServerEnv.TlsCertFile);
  const clientCaFile = get(UploadServerEnv.ClientCertFile);
  const clientName = get(UploadServerEnv.ClientName);
  if (!insecure) {
    for (const [name, v] of [
      [UploadServerEnv.TlsKeyFile, tlsKeyFile],
      [UploadServerEnv.TlsCertFile, tlsCertFile],
      [UploadServerEnv.ClientCertFile, clientCaFile],
      [UploadServerEnv.ClientName, clientName],
    ] as const) {
      if (v === undefined) problems.push(`${name} is required (or run with --insecure)`);
    }
  }
  const imageSize = reader.quantity(UploadServerEnv.ImageSize);
  const filesystemOverhead = reader.fraction(UploadServerEnv.FilesystemOverhead);
  const preallocation = reader.bool(UploadServerEnv.Preallocation);
  const listen = reader.attempt(
    UploadServerEnv.ListenAddress,
    () => parseListen(get(UploadServerEnv.ListenAddress) ?? '0.0.0.0:8443'),
    {
      host: '0.0.0.0',
      port: 8443,
    },
  );
  const journal = get(UploadServerEnv.Journal) ?? 'memory';
  if (journal !== 'memory' && journal !== 'disk')
    problems.push(`${UploadServerEnv.Journal}: ${JSON.stringify(journal)} is not memory or disk`);
  reader.throwIfProblems();
  return Object.freeze({
    listen,
    tlsKeyFile,
    tlsCertFile,
    clientCaFile,
    clientName,
    imageSize,
    filesystemOverhead,
    preallocation,
    destination: get(UploadServerEnv.Destination),
    dataDir: get(ImporterEnv.DataDir) ?? PodPaths.DataDir,
    blockDevice: get(ImporterEnv.BlockDevice) ?? PodPaths.BlockDevice,
    scratchDir: get(ImporterEnv.ScratchDir) ?? PodPaths.ScratchDir,
    terminationLog: get(ImporterEnv.TerminationLog) ?? PodPaths.TerminationLog,
    journal: journal === 'disk' ? 'disk' : 'memory',
    ownerUid: get(ImporterEnv.OwnerUid),
  });
}
