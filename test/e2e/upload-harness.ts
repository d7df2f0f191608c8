// SPDX-License-Identifier: Apache-2.0
/**
 * Shared set-up of the upload suites: the sandbox with everything a cluster would run (the
 * controller as a process in namespace `cdi`, the token API behind the aggregated API, the upload
 * proxy), images made with qemu-img and their references, and small helpers: create an upload
 * DataVolume, mint a token through `UploadTokenRequest`, call the proxy with curl.
 */
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { CDI_GROUP, CDI_VERSION, type DataVolume } from '../../common/api/datavolume.js';
import { makeRawImage, makeTempDir, qemuConvertToRaw, qemuImg } from '../fixtures/index.js';
import { FAST_RESTART_BACKOFF, startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubeConfigFor, podRuntimeFromEnv, type PodRuntimeOptions } from '../sandbox/testing.js';
import { sameDisk, volumeData, waitForPhase, type ClusterClient } from './controller-harness.js';

const MiB = 1024 * 1024;

/** A running sandbox with the whole upload path. */
export interface UploadEnv extends ClusterClient {
  readonly sandbox: Sandbox;
  readonly kc: KubeConfig;
  readonly custom: CustomObjectsApi;
  /** The upload proxy's URL (what CDIConfig `status.uploadProxyURL` says). */
  readonly proxyUrl: string;
  /** The sandbox CA as a file, for `curl --cacert` (the proxy's loopback certificate). */
  readonly caFile: string;
  /** Scratch space for images, removed by `stop()`. */
  readonly dir: string;
  /** A qcow2 image (24 MiB virtual, data in three places) and its raw conversion by qemu-img. */
  readonly qcow2: string;
  readonly raw: string;
  stop(): Promise<void>;
}

/**
 * Starts the sandbox with controller and upload proxy, and makes the images; pods run as
 * `runtime` says (else as CDI_E2E_POD_RUNTIME says, else as local processes).
 */
export async function startUploadEnv(
  runtime: PodRuntimeOptions = podRuntimeFromEnv(),
): Promise<UploadEnv> {
  const tmp = await makeTempDir('cdi-upload-e2e-');
  const sandbox = await startSandbox({
    controller: true,
    uploadProxy: true,
    restartBackoff: FAST_RESTART_BACKOFF,
    ...runtime,
  });
  try {
    if (sandbox.uploadProxyUrl === undefined)
      throw new Error('the sandbox runs no upload proxy: is dist/ built (npm run build:ts)?');
    const kc = kubeConfigFor(sandbox);
    const caFile = join(tmp.dir, 'ca.crt');
    await writeFile(caFile, sandbox.caPem);
    const source = await makeRawImage(join(tmp.dir, 'source.raw'), 24 * MiB, [
      { offset: 0, length: MiB, seed: 1 },
      { offset: 5 * MiB + 512, length: 3 * MiB, seed: 2 },
      { offset: 23 * MiB, length: MiB, seed: 3 },
    ]);
    const qcow2 = join(tmp.dir, 'disk.qcow2');
    await qemuImg('convert', '-O', 'qcow2', '-c', source, qcow2);
    const raw = await qemuConvertToRaw(qcow2, join(tmp.dir, 'disk.raw'));
    return {
      sandbox,
      kc,
      core: kc.makeApiClient(CoreV1Api),
      custom: kc.makeApiClient(CustomObjectsApi),
      proxyUrl: sandbox.uploadProxyUrl,
      caFile,
      dir: tmp.dir,
      qcow2,
      raw,
      async stop() {
        await sandbox.stop();
        await tmp.cleanup();
      },
    };
  } catch (err) {
    await sandbox.stop();
    await tmp.cleanup();
    throw err;
  }
}

/** Creates a DataVolume with `source.upload` in `default`. */
export async function createUploadDv(
  env: UploadEnv,
  name: string,
  options: { readonly size?: string; readonly block?: boolean } = {},
): Promise<void> {
  const dv: DataVolume = {
    apiVersion: `${CDI_GROUP}/${CDI_VERSION}`,
    kind: 'DataVolume',
    metadata: { name, namespace: 'default' },
    spec: {
      source: { upload: {} },
      storage: {
        ...(options.block === true ? { volumeMode: 'Block' } : {}),
        resources: { requests: { storage: options.size ?? '64Mi' } },
      },
    },
  };
  await env.custom.createNamespacedCustomObject({
    group: CDI_GROUP,
    version: CDI_VERSION,
    namespace: 'default',
    plural: 'datavolumes',
    body: dv,
  });
}

/** Creates an upload DataVolume and waits for UploadReady. */
export async function readyUploadDv(
  env: UploadEnv,
  name: string,
  options: { readonly size?: string; readonly block?: boolean } = {},
): Promise<void> {
  await createUploadDv(env, name, options);
  await waitForPhase(env, 'default', name, 'UploadReady');
}

/** Mints an upload token with an `UploadTokenRequest` through the sandbox's aggregated API. */
export async function mintToken(
  env: UploadEnv,
  pvc: string,
  namespace = 'default',
): Promise<string> {
  const created = (await env.custom.createNamespacedCustomObject({
    group: 'upload.cdi.kubevirt.io',
    version: 'v1beta1',
    namespace,
    plural: 'uploadtokenrequests',
    body: {
      apiVersion: 'upload.cdi.kubevirt.io/v1beta1',
      kind: 'UploadTokenRequest',
      metadata: { name: pvc, namespace },
      spec: { pvcName: pvc },
    },
  })) as { status?: { token?: string } };
  const token = created.status?.token;
  if (token === undefined || token === '') throw new Error('UploadTokenRequest returned no token');
  return token;
}

/** One curl call's HTTP status and body. */
export interface CurlResult {
  readonly status: number;
  readonly body: string;
  readonly stderr: string;
}

/** Runs curl against the proxy (trusting the sandbox CA); never throws on an HTTP error. */
export function curl(env: UploadEnv, args: readonly string[], stdin?: string): Promise<CurlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'curl',
      ['-sS', '--cacert', env.caFile, '-w', '\n%{http_code}', ...args],
      { maxBuffer: 8 * MiB, timeout: 120_000 },
      (_err, stdout, stderr) => {
        const cut = stdout.lastIndexOf('\n');
        resolve({
          status: Number(stdout.slice(cut + 1)),
          body: stdout.slice(0, cut),
          stderr,
        });
      },
    );
    // `stdin`: a file streamed to curl's standard input (`-T -` sends it chunked).
    if (stdin !== undefined && child.stdin !== null) createReadStream(stdin).pipe(child.stdin);
    else child.stdin?.end();
  });
}

/** Waits for Succeeded and checks the volume holds `reference` (then zeros). */
export async function expectUploaded(
  env: UploadEnv,
  name: string,
  reference: string,
): Promise<DataVolume> {
  const dv = await waitForPhase(env, 'default', name, 'Succeeded');
  const data = await volumeData(env, 'default', name);
  if (!(await sameDisk(reference, data)))
    throw new Error(`${name}: the volume differs from qemu-img's conversion`);
  return dv;
}
