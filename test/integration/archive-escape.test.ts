// SPDX-License-Identifier: Apache-2.0
/**
 * The archive escape of issue 17 as users meet it: `cdi import --content-type archive` from a
 * local HTTP server, and an upload to `/v1beta1/upload-archive` through the real upload proxy and
 * server. The hostile archive is refused and a canary file outside the target keeps its content
 * and inode; benign gzip- and xz-wrapped archives still extract exactly as GNU tar extracts them.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compressFile, makeTempDir } from '../fixtures/index.js';
import { buildTar, type TarEntry } from '../fixtures/tar-builder.js';
import { listTree, pathsResolvingOutside } from '../fixtures/tree-snapshot.js';
import { runCdi } from '../helpers/cdi-cli.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { createUploadPki, type UploadPki } from '../helpers/upload-pki.js';
import { startUploadStack, type UploadStack } from '../helpers/upload-stack.js';

const run = promisify(execFile);
const CANARY = 'host file: must never change\n';

let tmp: { dir: string; cleanup: () => Promise<void> };
let server: TestHttpServer;
let canary: string;
let canaryIno: number;

const sym = (name: string, linkname: string): TarEntry => ({ name, type: 'symlink', linkname });

/** Issue 17: `a` → `.`, `a/b` → `..`, `b2` → `b/..` ... `b8` → `b7/..`, `h` → `b8/<host file>`. */
function issueReproduction(hostFile: string): Buffer {
  const entries = [sym('a', '.'), sym('a/b', '..'), sym('b2', 'b/..')];
  for (let i = 3; i <= 8; i++) entries.push(sym(`b${i}`, `b${i - 1}/..`));
  entries.push({ name: 'h', type: 'link', linkname: `b8/${hostFile.slice(1)}` });
  return buildTar(entries);
}

/** The same chain with no entry under a link: every link is created, or none. */
function chainOnly(): Buffer {
  const entries = [sym('b', '..')];
  for (let i = 2; i <= 8; i++) entries.push(sym(`b${i}`, `b${i - 1}/..`));
  return buildTar(entries);
}

const BENIGN: readonly TarEntry[] = [
  { name: 'docs', type: 'dir', mode: 0o755 },
  { name: 'docs/readme.txt', body: 'read me\n' },
  { name: 'docs/sub/notes.txt', body: 'n'.repeat(70_000) },
  { name: 'bin/tool', body: '#!/bin/sh\n', mode: 0o755 },
  { name: 'readme', type: 'symlink', linkname: 'docs/readme.txt' },
  { name: 'docs/sub/up', type: 'symlink', linkname: '../readme.txt' },
  { name: 'tool-again', type: 'link', linkname: 'bin/tool' },
];

async function expectCanaryIntact(): Promise<void> {
  const st = await stat(canary);
  expect({ ino: st.ino, nlink: st.nlink }).toEqual({ ino: canaryIno, nlink: 1 });
  expect(await readFile(canary, 'utf8')).toBe(CANARY);
}

/** What GNU tar makes of `archive` (the tool CDI runs), for comparison. */
async function gnuTarTree(archive: string, flags: string): Promise<Record<string, string>> {
  const dir = join(tmp.dir, `gnu-${flags}`);
  await mkdir(dir, { recursive: true });
  await run('tar', [`-x${flags}f`, archive, '-C', dir, '--no-same-owner']);
  return listTree(dir);
}

beforeAll(async () => {
  tmp = await makeTempDir('cdi-archive-escape-');
  canary = join(tmp.dir, 'host', 'secret.txt');
  await mkdir(join(tmp.dir, 'host'));
  await writeFile(canary, CANARY);
  canaryIno = (await stat(canary)).ino;
  const benign = join(tmp.dir, 'benign.tar');
  await writeFile(benign, buildTar(BENIGN));
  await compressFile(benign, `${benign}.gz`, 'gzip');
  await compressFile(benign, `${benign}.xz`, 'xz');
  server = await startTestHttpServer({
    files: {
      '/repro.tar': issueReproduction(canary),
      '/chain.tar': chainOnly(),
      '/benign.tar.gz': await readFile(`${benign}.gz`),
      '/benign.tar.xz': await readFile(`${benign}.xz`),
    },
  });
});

afterAll(async () => {
  await server.close();
  await tmp.cleanup();
});

describe('cdi import --content-type archive', () => {
  it.each([
    { what: 'the issue reproduction', path: '/repro.tar', text: /"a\/b": "a" is a symbolic link/ },
    { what: 'the link chain alone', path: '/chain.tar', text: /symbolic link to "\.\.".*outside/ },
  ])('refuses $what; the host file and the target stay untouched', async ({ path, text }) => {
    const dest = join(tmp.dir, `dest${path.replace(/\W/g, '-')}`);
    const res = await runCdi([
      'import',
      '--source',
      server.url(path),
      '--dest',
      dest,
      '--content-type',
      'archive',
    ]);
    expect(res.code, res.stderr).not.toBe(0);
    expect(res.stderr).toMatch(text);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    await expectCanaryIntact();
    expect(await listTree(dest)).toEqual({});
  });

  it.each([
    { what: 'gzip', path: '/benign.tar.gz', flags: 'z' },
    { what: 'xz', path: '/benign.tar.xz', flags: 'J' },
  ])('extracts a benign $what-wrapped tar as GNU tar does', async ({ path, flags }) => {
    const dest = join(tmp.dir, `dest-benign-${flags}`);
    const res = await runCdi([
      'import',
      '--source',
      server.url(path),
      '--dest',
      dest,
      '--content-type',
      'archive',
      '--json',
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ format: 'archive', size: 8 + 70_000 + 10 });
    const tree = await listTree(dest);
    expect(tree).toEqual(
      await gnuTarTree(join(tmp.dir, `benign.tar.${flags === 'z' ? 'gz' : 'xz'}`), flags),
    );
    expect(tree['readme']).toBe('link:docs/readme.txt');
    expect((await stat(join(dest, 'tool-again'))).ino).toBe(
      (await stat(join(dest, 'bin/tool'))).ino,
    );
    expect(await pathsResolvingOutside(dest)).toEqual([]);
  });
});

describe('an upload into an archive DataVolume (upload-archive)', () => {
  let pki: UploadPki;
  let stack: UploadStack | undefined;

  beforeAll(async () => {
    pki = await createUploadPki();
  });

  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  afterAll(async () => {
    await pki.cleanup();
  });

  async function uploadArchive(
    s: UploadStack,
    body: Buffer,
  ): Promise<{ status: number; text: string }> {
    const res = await request(`${s.proxy.url}/v1beta1/upload-archive`, {
      method: 'POST',
      body,
      headers: { authorization: `Bearer ${await s.token()}` },
      dispatcher: s.dispatcher,
    });
    return { status: res.statusCode, text: await res.body.text() };
  }

  it('refuses the issue reproduction with 400; the host file and the volume stay untouched', async () => {
    stack = await startUploadStack(pki);
    const dataDir = join(stack.dir, 'data');
    const res = await uploadArchive(stack, issueReproduction(canary));
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/refusing archive entry &#34;a\/b&#34;/);
    await expectCanaryIntact();
    expect(await listTree(dataDir)).toEqual({});
  });

  it('still extracts a benign archive after refusing a hostile one', async () => {
    stack = await startUploadStack(pki);
    const dataDir = join(stack.dir, 'data');
    expect((await uploadArchive(stack, chainOnly())).status).toBe(400);
    const gz = await readFile(join(tmp.dir, 'benign.tar.gz'));
    expect(await uploadArchive(stack, gz)).toEqual({ status: 200, text: '' });
    await stack.server.done;
    expect(await listTree(dataDir)).toEqual(await gnuTarTree(join(tmp.dir, 'benign.tar.gz'), 'z'));
    await expectCanaryIntact();
  });
});
