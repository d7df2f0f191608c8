// SPDX-License-Identifier: Apache-2.0
/**
 * Helpers for suites that run against the sandbox: a KubeConfig for it, the real kubectl with
 * its kubeconfig and a private discovery cache, and waiting for an object to reach a state
 * through a watch (never by polling with sleeps).
 */
import { execFile } from 'node:child_process';
import {
  ApiException,
  KubeConfig,
  KubernetesObjectApi,
  Watch,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { join } from 'node:path';
import { CdiError, ErrorCodes } from '../../common/errors.js';
import type { ImageSourceName, PodRuntimeName, Sandbox } from './index.js';

/** The kubectl binary the tests use (`KUBECTL` overrides). */
export const KUBECTL = process.env['KUBECTL'] ?? 'kubectl';

/** How a suite's sandbox runs pods, unless the suite says. */
export interface PodRuntimeOptions {
  readonly podRuntime?: PodRuntimeName;
  readonly image?: string;
  readonly imageSource?: ImageSourceName;
}

/**
 * The pod runtime of e2e suites from the environment: `CDI_E2E_POD_RUNTIME=runc` (and
 * `CDI_E2E_IMAGE=FILE`) runs a suite's pods from the image, so any suite can be run that way;
 * `CDI_E2E_IMAGE_SOURCE=registry` pulls it through the local registry.
 */
export function podRuntimeFromEnv(env: NodeJS.ProcessEnv = process.env): PodRuntimeOptions {
  const runtime = env['CDI_E2E_POD_RUNTIME'];
  if (runtime !== undefined && runtime !== 'process' && runtime !== 'runc')
    throw new Error(`CDI_E2E_POD_RUNTIME=${runtime}: expected process or runc`);
  const image = env['CDI_E2E_IMAGE'];
  const source = env['CDI_E2E_IMAGE_SOURCE'];
  if (source !== undefined && source !== 'archive' && source !== 'registry')
    throw new Error(`CDI_E2E_IMAGE_SOURCE=${source}: expected archive or registry`);
  return {
    ...(runtime === undefined ? {} : { podRuntime: runtime }),
    ...(image === undefined ? {} : { image }),
    ...(source === undefined ? {} : { imageSource: source }),
  };
}

/** A client-node KubeConfig for the sandbox. */
export function kubeConfigFor(sandbox: Sandbox): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(sandbox.kubeconfigPath);
  return kc;
}

/** Result of one kubectl run. */
export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs kubectl against the sandbox; never throws on a non-zero exit (the result says). */
export function kubectl(
  sandbox: Sandbox,
  args: readonly string[],
  opts: { readonly input?: string; readonly timeoutMs?: number } = {},
): Promise<KubectlResult> {
  const full = [
    '--kubeconfig',
    sandbox.kubeconfigPath,
    '--cache-dir',
    join(sandbox.dataDir, 'kubectl-cache'),
    ...args,
  ];
  return new Promise((resolve) => {
    const child = execFile(
      KUBECTL,
      full,
      { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** What {@link waitForObject} waits for. */
export interface WaitSpec<T> {
  /** The collection, for example `/api/v1/namespaces/default/pods`. */
  readonly path: string;
  readonly name: string;
  readonly until: (obj: T) => boolean;
  /** Default 30 s. */
  readonly timeoutMs?: number;
}

/**
 * Resolves with the object as soon as `until` holds, watching from its current state (a watch
 * without resourceVersion starts with the object as it is); rejects after the timeout.
 */
export async function waitForObject<T extends KubernetesObject>(
  kc: KubeConfig,
  spec: WaitSpec<T>,
): Promise<T> {
  const { path, name, until: predicate, timeoutMs = 30_000 } = spec;
  const watch = new Watch(kc);
  let last: T | undefined;
  let controller: AbortController | undefined;
  let settled = false;
  return new Promise<T>((resolve, reject) => {
    const finish = (err: Error | undefined, obj?: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      controller?.abort();
      if (err === undefined && obj !== undefined) resolve(obj);
      else reject(err ?? new Error('watch ended'));
    };
    const timer = setTimeout(() => {
      finish(
        new CdiError(
          ErrorCodes.Internal,
          `timed out after ${timeoutMs} ms waiting for ${path}/${name}; last seen: ${JSON.stringify(last)}`,
        ),
      );
    }, timeoutMs);
    // client-node ends a watch that saw no event for a while (a TimeoutError) and the server may
    // close it: both only mean "watch again", until our own deadline decides.
    const start = (): void => {
      watch
        .watch(
          path,
          { fieldSelector: `metadata.name=${name}` },
          (phase: string, obj: T) => {
            if (phase === 'DELETED' || phase === 'BOOKMARK') return;
            last = obj;
            if (predicate(obj)) finish(undefined, obj);
          },
          (err: unknown) => {
            if (settled) return;
            const errName = err instanceof Error ? err.name : undefined;
            if (err === null || err === undefined || errName === 'TimeoutError') start();
            else if (errName !== 'AbortError') {
              finish(err instanceof Error ? err : new Error(JSON.stringify(err)));
            }
          },
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
          },
          (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
        );
    };
    start();
  });
}

/** What names an object for {@link waitForDeletion}. */
export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

/**
 * Resolves once the object is gone: at once when a GET answers 404, else on the watch's DELETED
 * event from the resourceVersion that GET saw.
 */
export async function waitForDeletion(
  kc: KubeConfig,
  path: string,
  ref: ObjectRef,
  timeoutMs = 30_000,
): Promise<void> {
  const client = KubernetesObjectApi.makeApiClient(kc);
  let rv: string | undefined;
  try {
    const obj = await client.read({
      apiVersion: ref.apiVersion,
      kind: ref.kind,
      metadata: {
        name: ref.name,
        ...(ref.namespace === undefined ? {} : { namespace: ref.namespace }),
      },
    });
    rv = obj.metadata?.resourceVersion;
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return;
    throw err;
  }
  const watch = new Watch(kc);
  let controller: AbortController | undefined;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      controller?.abort();
      reject(
        new CdiError(
          ErrorCodes.Internal,
          `timed out after ${timeoutMs} ms waiting for ${path}/${ref.name} to go`,
        ),
      );
    }, timeoutMs);
    let done = false;
    const finish = (): void => {
      done = true;
      clearTimeout(timer);
      controller?.abort();
      resolve();
    };
    watch
      .watch(
        path,
        { fieldSelector: `metadata.name=${ref.name}`, resourceVersion: rv },
        (phase: string) => {
          if (phase === 'DELETED') finish();
        },
        () => undefined,
      )
      .then((c) => {
        controller = c;
        if (done) c.abort();
      }, reject);
  });
}
