// SPDX-License-Identifier: Apache-2.0
/**
 * End to end, `contentType: archive` DataVolumes in the sandbox cluster: the archive escape of
 * issue 17 is refused by the importer pod (the cause in the Running condition, the host file and
 * the volume untouched), and a benign archive ends extracted exactly as GNU tar extracts it.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataVolume } from '../../common/api/datavolume.js';
import { ConditionTypes } from '../../common/api/phases.js';
import { compressFile, makeTempDir } from '../fixtures/index.js';
import { buildTar, type TarEntry } from '../fixtures/tar-builder.js';
import { listTree } from '../fixtures/tree-snapshot.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import {
  apply,
  httpDvManifest,
  startControllerEnv,
  volumeData,
  waitForDv,
  waitForPhase,
  type ControllerEnv,
} from './controller-harness.js';

const CANARY = 'host file: must never change\n';
let env: ControllerEnv;
let files: TestHttpServer;
let tmp: { dir: string; cleanup: () => Promise<void> };
let canary: string;

const sym = (name: string, linkname: string): TarEntry => ({ name, type: 'symlink', linkname });

/** Issue 17: `a` → `.`, `a/b` → `..`, `b2` → `b/..` ... `b8` → `b7/..`, `h` → `b8/<host file>`. */
function issueReproduction(hostFile: string): Buffer {
  const entries = [sym('a', '.'), sym('a/b', '..'), sym('b2', 'b/..')];
  for (let i = 3; i <= 8; i++) entries.push(sym(`b${i}`, `b${i - 1}/..`));
  entries.push({ name: 'h', type: 'link', linkname: `b8/${hostFile.slice(1)}` });
  return buildTar(entries);
}

const BENIGN: readonly TarEntry[] = [
  { name: 'config', type: 'dir', mode: 0o755 },
  { name: 'config/app.yaml', body: 'replicas: 3\n' },
  { name: 'current', type: 'symlink', linkname: 'config/app.yaml' },
  { name: 'copy.yaml', type: 'link', linkname: 'config/app.yaml' },
];

beforeAll(async () => {
  tmp = await makeTempDir('cdi-e2e-archive-');
  canary = join(tmp.dir, 'host', 'secret.txt');
  await mkdir(join(tmp.dir, 'host'));
  await writeFile(canary, CANARY);
  const benign = join(tmp.dir, 'benign.tar');
  await writeFile(benign, buildTar(BENIGN));
  await compressFile(benign, `${benign}.gz`, 'gzip');
  files = await startTestHttpServer({
    files: {
      '/repro.tar': issueReproduction(canary),
      '/benign.tar.gz': await readFile(`${benign}.gz`),
    },
  });
  env = await startControllerEnv();
});

afterAll(async () => {
  await env?.stop();
  await files?.close();
  await tmp?.cleanup();
});

describe('archive DataVolumes', () => {
  it('refuse the issue reproduction: the cause in Running, the host file and volume untouched', async () => {
    const before = await stat(canary);
    await apply(
      env,
      httpDvManifest('hostile-archive', `${files.origin}/repro.tar`, '  contentType: archive\n'),
    );
    const refusal = (d: DataVolume): string =>
      d.status?.conditions?.find((c) => c.type === ConditionTypes.Running)?.message ?? '';
    // Ends on the refusal, or on the success an escaping extractor reports.
    const dv = await waitForDv(
      env,
      'default',
      'hostile-archive',
      (d) => d.status?.phase === 'Succeeded' || refusal(d).includes('refusing archive entry'),
    );
    expect(dv.status?.phase).not.toBe('Succeeded');
    expect(refusal(dv)).toContain('"a/b": "a" is a symbolic link');
    const after = await stat(canary);
    expect([after.ino, after.nlink]).toEqual([before.ino, 1]);
    expect(await readFile(canary, 'utf8')).toBe(CANARY);
    const dir = join(await volumeData(env, 'default', 'hostile-archive'), '..');
    expect(await listTree(dir)).toEqual({});
  });

  it('extract a benign gzip-wrapped archive exactly as GNU tar does', async () => {
    await apply(
      env,
      httpDvManifest('benign-archive', `${files.origin}/benign.tar.gz`, '  contentType: archive\n'),
    );
    await waitForPhase(env, 'default', 'benign-archive', 'Succeeded');
    const gnu = join(tmp.dir, 'gnu');
    await mkdir(gnu);
    await promisify(execFile)('tar', ['-xzf', join(tmp.dir, 'benign.tar.gz'), '-C', gnu]);
    const dir = join(await volumeData(env, 'default', 'benign-archive'), '..');
    expect(await listTree(dir)).toEqual(await listTree(gnu));
  });
});
