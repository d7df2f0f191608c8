// SPDX-License-Identifier: Apache-2.0
/**
 * The importer's half of registry `pullMethod: node` (CDI's cmd/cdi-importer): the kubelet runs
 * the container disk image as the pod's `server` container, which serves its one disk file over
 * HTTP on localhost and writes the file's name into the ready file once it listens. The importer
 * waits for that file (a minute at most, as CDI), reads the disk from the endpoint with the
 * default name replaced by the served one, and creates the done file when the import succeeded,
 * so that the server exits and the pod completes. The image's `*KUBEVIRT_IO_*` environment,
 * which a pod pull reads from the image config, comes from the server's `/info` instead.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { PodPaths } from '../../common/contract.js';
import { CdiError, ErrorCodes, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { envsToLabels } from '../sources/registry/manifest.js';

/** How long the server's `/info` may take. */
const INFO_TIMEOUT_MS = 10_000;

/** CDI waits this long for the server's ready file. */
export const READY_FILE_TIMEOUT_MS = 60_000;
const READY_FILE_POLL_MS = 1_000;

/**
 * Waits until `readyFile` exists and returns the endpoint to read: `endpoint` with a trailing
 * `disk.img` replaced by the name the file holds (unchanged when it is empty).
 */
export async function waitForServer(
  readyFile: string,
  endpoint: string,
  signal: AbortSignal,
  timeoutMs = READY_FILE_TIMEOUT_MS,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while ((await stat(readyFile).catch(() => undefined)) === undefined) {
    if (Date.now() >= deadline) {
      throw new CdiError(ErrorCodes.SourceStalled, `Timeout waiting for file ${readyFile}`);
    }
    await sleep(READY_FILE_POLL_MS, undefined, { signal });
  }
  const name = (await readFile(readyFile, 'utf8')).trim();
  return servedEndpoint(endpoint, name);
}

/** `endpoint` with its trailing `disk.img` replaced by `name` (CDI getHTTPEp). */
export function servedEndpoint(endpoint: string, name: string): string {
  if (name === '') return endpoint;
  const base = endpoint.endsWith(PodPaths.DiskImageName)
    ? endpoint.slice(0, -PodPaths.DiskImageName.length)
    : endpoint;
  return base + encodeURIComponent(name);
}

/** Creates the done file (exclusively, as CDI) so that the server container exits. */
export async function touchDoneFile(doneFile: string): Promise<void> {
  const handle = await open(doneFile, 'wx', 0o666).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  });
  await handle?.close();
}

/**
 * The labels of the image's `*KUBEVIRT_IO_*` environment, from the server's `/info` (CDI
 * GetTerminationMessage); none, with the cause logged, when the server does not answer.
 */
export async function serverLabels(
  endpoint: string,
  logger: Logger,
): Promise<Record<string, string>> {
  const url = new URL('/info', endpoint);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(INFO_TIMEOUT_MS) });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`expected status code 200, got ${res.status}`);
    }
    const info = (await res.json()) as { env?: unknown };
    const env = Array.isArray(info.env) ? info.env.map(String) : [];
    return envsToLabels(env);
  } catch (err) {
    logger.error(`failed request containerimage-server info: ${errorMessage(err)}`);
    return {};
  }
}
