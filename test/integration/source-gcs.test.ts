// SPDX-License-Identifier: Apache-2.0
/**
 * `cdi import` from Google Cloud Storage against a local stand-in (test/helpers/gcs-server.ts)
 * speaking the XML and JSON download APIs and the OAuth token exchange: anonymous public objects,
 * private objects through a service-account key (JWT signed here, verified there), `gs://` URLs
 * through the documented endpoint override, and clear errors for a missing token, a foreign key
 * and a missing object. Every disk is compared with `qemu-img convert -O raw`.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { compressFile, makeQcow2Disk, makeTempDir, sameContent } from '../fixtures/index.js';
import { runCdi } from '../helpers/cdi-cli.js';
import {
  createServiceAccountKey,
  startGcsServer,
  type TestGcsServer,
} from '../helpers/gcs-server.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; cleanup: () => Promise<void> };
let gcs: TestGcsServer;
let keyFile: string;
let foreignKeyFile: string;
let reference: string;
let n = 0;

beforeAll(async () => {
  tmp = await makeTempDir('cdi-gcs-');
  const disk = await makeQcow2Disk(tmp.dir, 'disk', 24 * MiB, [
    { offset: MiB, length: 2 * MiB },
    { offset: 20 * MiB, length: MiB, seed: 5 },
  ]);
  const qcow2 = disk.qcow2;
  reference = disk.reference;
  const gz = await compressFile(qcow2, `${qcow2}.gz`, 'gzip');
  gcs = await startGcsServer((origin) => createServiceAccountKey(`${origin}/token`));
  const [qcow2Bytes, gzBytes] = await Promise.all([readFile(qcow2), readFile(gz)]);
  gcs.objects.set('private-bucket/images/fedora disk.qcow2', { data: qcow2Bytes });
  gcs.objects.set('public-bucket/disk.qcow2.gz', { data: gzBytes, public: true });
  keyFile = join(tmp.dir, 'credentials.json');
  await writeFile(keyFile, gcs.account?.json ?? '');
  foreignKeyFile = join(tmp.dir, 'foreign.json');
  await writeFile(foreignKeyFile, createServiceAccountKey(`${gcs.origin}/token`).json);
}, 60_000);

afterAll(async () => {
  await gcs.close();
  await tmp.cleanup();
});

function dest(): string {
  n += 1;
  return join(tmp.dir, `out-${n}.img`);
}

describe('cdi import from GCS', () => {
  it.each([
    {
      what: 'a public object by its XML API URL, anonymously',
      args: (): string[] => ['--source', `${gcs.origin}/public-bucket/disk.qcow2.gz`],
      env: (): Record<string, string> => ({}),
      bearer: false,
    },
    {
      what: 'a public object by gs:// and STORAGE_EMULATOR_HOST',
      args: (): string[] => ['--source', 'gs://public-bucket/disk.qcow2.gz'],
      env: (): Record<string, string> => ({ STORAGE_EMULATOR_HOST: gcs.host }),
      bearer: false,
    },
    {
      what: 'a private object by gs:// and --gcs-endpoint with --gcs-key',
      args: (): string[] => [
        '--source',
        'gs://private-bucket/images/fedora disk.qcow2',
        '--gcs-endpoint',
        gcs.origin,
        '--gcs-key',
        keyFile,
      ],
      env: (): Record<string, string> => ({}),
      bearer: true,
    },
    {
      what: 'a private object by its JSON API URL with GOOGLE_APPLICATION_CREDENTIALS',
      args: (): string[] => [
        '--source',
        `${gcs.origin}/storage/v1/b/private-bucket/o/${encodeURIComponent('images/fedora disk.qcow2')}?alt=media`,
        '--source-kind',
        'gcs',
      ],
      env: (): Record<string, string> => ({ GOOGLE_APPLICATION_CREDENTIALS: keyFile }),
      bearer: true,
    },
  ])('imports $what, identical to qemu-img', async ({ args, env, bearer }) => {
    const out = dest();
    const seen = gcs.requests.length;
    const run = await runCdi(['import', ...args(), '--dest', out, '--json'], env());
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(await sameContent(out, reference)).toBe(true);
    const downloads = gcs.requests.slice(seen).filter((r) => r.method !== 'POST');
    expect(downloads.length).toBeGreaterThan(0);
    for (const r of downloads) {
      if (bearer) expect(gcs.issued).toContain(r.authorization?.replace(/^Bearer /, ''));
      else expect(r.authorization).toBeUndefined();
    }
  });

  it.each([
    {
      what: 'a private object without a key',
      args: (): string[] => ['--source', `${gcs.origin}/private-bucket/images/fedora%20disk.qcow2`],
      line: /status code 200, got 401/,
    },
    {
      what: 'a key the token endpoint does not know',
      args: (): string[] => [
        '--source',
        'gs://private-bucket/images/fedora disk.qcow2',
        '--gcs-endpoint',
        gcs.host,
        '--gcs-key',
        foreignKeyFile,
      ],
      line: /GCS token endpoint .*\/token refused the key of importer@cdi-test\.iam\.gserviceaccount\.com: HTTP 400 .*bad signature/,
    },
    {
      what: 'a key file that is not a service-account key',
      args: (): string[] => [
        '--source',
        'gs://public-bucket/disk.qcow2.gz',
        '--gcs-endpoint',
        gcs.host,
        '--gcs-key',
        reference,
      ],
      line: /GCS key .* is not JSON/,
    },
    {
      what: 'a missing object',
      args: (): string[] => ['--source', `${gcs.origin}/public-bucket/nothing.img`],
      line: /got 404/,
    },
    {
      what: 'a URL without an object',
      args: (): string[] => ['--source', 'gs://public-bucket/'],
      line: /GCS URL gs:\/\/public-bucket\/: no object/,
    },
  ])('fails $what with one clear line and no image', async ({ args, line }) => {
    const out = dest();
    const run = await runCdi(
      ['import', ...args(), '--source-kind', 'gcs', '--retries', '0', '--dest', out],
      {},
    );
    expect(run.code).toBe(1);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines.at(-1)).toMatch(line);
    await expect(stat(out)).rejects.toThrow();
  });
});
