// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox with `--pod-runtime runc`: every pod the controller creates runs from the cdi image
 * (built once per source state, shared with the image suite, pulled by digest from the
 * sandbox's registry as `cdi-ts/cdi:latest`) under runc, as user 107 with fsGroup
 * 107, a read-only root, its volumes bind-mounted and its memory limit a cgroup-v1 limit. A
 * representative subset of the e2e paths: an HTTP qcow2 import, an upload, a same-namespace
 * clone, and an import of a 4 GiB disk under a 256 MiB limit. Every disk is compared with
 * qemu-img's raw conversion; the containers' peak memory is reported.
 */
import { stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataVolume } from '../../common/api/datavolume.js';
import { makeQcow2Disk } from '../fixtures/index.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { buildImageOnce } from '../containers/image-build.js';
import { defaultImageArchive, repoRoot } from '../sandbox/index.js';
import type { ContainerRecord } from '../sandbox/pod-runtime.js';
import { kubectl } from '../sandbox/testing.js';
import {
  apply,
  httpDvManifest,
  sameDisk,
  volumeData,
  waitForDv,
  waitForPhase,
} from './controller-harness.js';
import {
  curl,
  expectUploaded,
  mintToken,
  readyUploadDv,
  startUploadEnv,
  type UploadEnv,
} from './upload-harness.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** The bound: imports pass under a 256 MiB memory cgroup. */
const LIMIT = 256 * MiB;
/** What the controller runs its pods as (CDI's QEMU user). */
const POD_UID = 107;

let env: UploadEnv;
let files: TestHttpServer;
let bigRaw: string;
let bigQcow2: string;

function runningMessage(dv: DataVolume): string | undefined {
  return dv.status?.conditions?.find((c) => c.type === 'Running')?.message;
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? 'n/a' : `${(bytes / MiB).toFixed(1)} MiB`;
}

/** The container records of the pods whose name contains `dv` (the importer, upload, clone pods). */
async function recordsOf(dv: string): Promise<ContainerRecord[]> {
  // The record is written once runc has cleaned up, a moment after the pod's status says so.
  for (let i = 0; i < 100; i++) {
    const found = env.sandbox.containerRecords().filter((r) => r.pod.includes(dv));
    if (found.length > 0) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  return [];
}

function report(what: string, records: readonly ContainerRecord[]): void {
  for (const r of records) {
    console.log(
      `runc pods: ${what}: ${r.pod}/${r.container} exit ${r.exitCode}, peak memory ` +
        `${mib(r.peakMemoryBytes)} of ${mib(r.memoryLimitBytes)} with page cache (limit reached ` +
        `${r.memoryLimitHits ?? 'n/a'} times), peak RSS ${mib(r.peakRssBytes)}`,
    );
  }
}

/** The volume's disk is written by the pod's user into the fsGroup's group. */
async function expectPodOwned(dv: string): Promise<void> {
  const info = await stat(await volumeData(env, 'default', dv));
  expect([info.uid, info.gid]).toEqual([POD_UID, POD_UID]);
}

beforeAll(async () => {
  const image =
    process.env['CDI_E2E_IMAGE'] ??
    (await buildImageOnce(repoRoot(), defaultImageArchive(), (l) => console.log(l)));
  // The pods' image (cdi-ts/cdi:latest) is pulled by digest from the sandbox's registry.
  env = await startUploadEnv({ podRuntime: 'runc', image, imageSource: 'registry' });
  ({ qcow2: bigQcow2, reference: bigRaw } = await makeQcow2Disk(env.dir, 'big', 4 * GiB, [
    { offset: 0, length: 128 * MiB, seed: 11 },
    { offset: 2 * GiB + 4096, length: 128 * MiB, seed: 12 },
    { offset: 4 * GiB - 64 * MiB, length: 64 * MiB, seed: 13 },
  ]));
  files = await startTestHttpServer({
    files: { '/disk.qcow2': { path: env.qcow2 }, '/big.qcow2': { path: bigQcow2 } },
  });
}, 600_000);

afterAll(async () => {
  await files?.close();
  await env?.stop();
});

describe('pods in runc containers', () => {
  it('imports an HTTP qcow2 into a DataVolume from the image, as user 107', async () => {
    expect(env.sandbox.podRuntime).toBe('runc');
    await apply(env, httpDvManifest('runc-http', files.url('/disk.qcow2')));
    await waitForPhase(env, 'default', 'runc-http', 'Succeeded', 180_000);
    expect(await sameDisk(env.raw, await volumeData(env, 'default', 'runc-http'))).toBe(true);
    await expectPodOwned('runc-http');
    const records = await recordsOf('runc-http');
    report('http import', records);
    expect(records.map((r) => r.exitCode)).toContain(0);
  });

  it('uploads through the proxy into an upload server pod in runc', async () => {
    await readyUploadDv(env, 'runc-upload');
    const res = await curl(env, [
      '-H',
      `Authorization: Bearer ${await mintToken(env, 'runc-upload')}`,
      '--data-binary',
      `@${env.qcow2}`,
      `${env.proxyUrl}/v1beta1/upload`,
    ]);
    expect(res.status, res.body + res.stderr).toBe(200);
    await expectUploaded(env, 'runc-upload', env.raw);
    await expectPodOwned('runc-upload');
    report('upload', await recordsOf('runc-upload'));
  });

  it('clones a DataVolume in its namespace', async () => {
    await apply(
      env,
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata:
  name: runc-clone
spec:
  source:
    pvc:
      name: runc-http
      namespace: default
  storage: {}
`,
    );
    await waitForPhase(env, 'default', 'runc-clone', 'Succeeded', 180_000);
    expect(await sameDisk(env.raw, await volumeData(env, 'default', 'runc-clone'))).toBe(true);
    report('clone', await recordsOf('runc-clone'));
  });

  it('imports a 4 GiB disk under a 256 MiB memory limit', async () => {
    const patch = JSON.stringify({
      spec: { podResourceRequirements: { limits: { memory: '256Mi' } } },
    });
    const r = await kubectl(env.sandbox, [
      'patch',
      'cdiconfig',
      'config',
      '--type=merge',
      '-p',
      patch,
    ]);
    expect(r.code, r.stderr).toBe(0);
    // The controller writes the limit into the status the pod builders read.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const got = await kubectl(env.sandbox, [
        'get',
        'cdiconfig',
        'config',
        '-o',
        'jsonpath={.status.defaultPodResourceRequirements.limits.memory}',
      ]);
      if (got.stdout === '256Mi') break;
      if (Date.now() > deadline) throw new Error(`CDIConfig status limit: ${got.stdout}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    await apply(env, httpDvManifest('runc-big', files.url('/big.qcow2'), '', '4Gi'));
    await waitForPhase(env, 'default', 'runc-big', 'Succeeded', 280_000);
    expect(await sameDisk(bigRaw, await volumeData(env, 'default', 'runc-big'))).toBe(true);
    const records = (await recordsOf('runc-big')).filter((x) => x.container !== '');
    report('4 GiB import under 256 MiB', records);
    const importer = records.find((x) => x.exitCode === 0);
    expect(importer?.memoryLimitBytes).toBe(LIMIT);
    expect(importer?.peakMemoryBytes).toBeLessThanOrEqual(LIMIT);
  });

  it('uploads a 4 GiB disk under the same 256 MiB memory limit', async () => {
    await readyUploadDv(env, 'runc-big-upload', { size: '4Gi' });
    // -T streams the file (curl does not hold it in memory); POST as virtctl sends it.
    const res = await curl(env, [
      '-H',
      `Authorization: Bearer ${await mintToken(env, 'runc-big-upload')}`,
      '-X',
      'POST',
      '-T',
      bigQcow2,
      `${env.proxyUrl}/v1beta1/upload`,
    ]);
    expect(res.status, res.body + res.stderr).toBe(200);
    await expectUploaded(env, 'runc-big-upload', bigRaw);
    const records = await recordsOf('runc-big-upload');
    report('4 GiB upload under 256 MiB', records);
    const server = records.find((x) => x.exitCode === 0);
    expect(server?.memoryLimitBytes).toBe(LIMIT);
    expect(server?.peakMemoryBytes).toBeLessThanOrEqual(LIMIT);
  });

  it('reads the termination message from the container: a 404 is in the Running condition', async () => {
    await apply(env, httpDvManifest('runc-missing', files.url('/nope.qcow2')));
    const dv = await waitForDv(env, 'default', 'runc-missing', (d) =>
      (runningMessage(d) ?? '').includes('404'),
    );
    expect(runningMessage(dv)).toContain('Unable to connect to http data source');
    await kubectl(env.sandbox, ['delete', 'dv', 'runc-missing', '--wait=false']);
  });
});
