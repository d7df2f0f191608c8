// SPDX-License-Identifier: Apache-2.0
/**
 * The static file server of registry `pullMethod: node` (native/containerimage-server), compiled
 * here as `npm run image` compiles it and run as the server container runs it: it serves the one
 * file of its image directory (whole, byte ranges, HEAD) and `/info`, writes the file's name into
 * the ready file once it listens, exits when the done file appears, and refuses a directory
 * that does not hold exactly one regular file.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';

const run = promisify(execFile);
const SOURCE = join(import.meta.dirname, '..', '..', 'native', 'containerimage-server', 'server.c');

let work: string;
let server: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'cdi-cis-'));
  server = join(work, 'server');
  await run('cc', ['-static', '-Os', '-s', '-o', server, SOURCE]);
}, 120_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Started {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; stderr: string }>;
  readonly url: string;
  readonly ready: string;
  readonly done: string;
}

async function start(dir: string, env: Record<string, string> = {}): Promise<Started> {
  const shared = await mkdtemp(join(work, 'shared-'));
  const port = await freePort();
  const ready = join(shared, 'ready');
  const done = join(shared, 'done');
  const child = spawn(
    server,
    ['-p', String(port), '-image-dir', dir, '-ready-file', ready, '-done-file', done],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stderr })),
  );
  return { child, exited, url: `http://127.0.0.1:${port}`, ready, done };
}

/** Resolves once the ready file exists (the server listens by then). */
async function whenReady(s: Started): Promise<string> {
  for (let i = 0; i < 200; i++) {
    if (existsSync(s.ready)) return readFile(s.ready, 'utf8');
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the server never wrote its ready file');
}

describe('cdi-containerimage-server', () => {
  const disk = randomBytes(300_000);
  let s: Started;

  beforeAll(async () => {
    const dir = join(work, 'disk');
    await mkdir(dir);
    await writeFile(join(dir, 'fedora.qcow2'), disk);
    s = await start(dir, { INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE: 'u1.small' });
    expect(await whenReady(s)).toBe('fedora.qcow2');
  });

  afterAll(() => {
    s.child.kill('SIGKILL');
  });

  it('serves the file whole', async () => {
    const res = await fetch(`${s.url}/fedora.qcow2`);
    expect(res.status).toBe(200);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await res.arrayBuffer()).equals(disk)).toBe(true);
  });

  it('answers HEAD with the length and no body', async () => {
    const res = await fetch(`${s.url}/fedora.qcow2`, { method: 'HEAD' });
    expect(res.headers.get('content-length')).toBe(String(disk.length));
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  it.each([
    ['bytes=1000-1999', 1000, 2000],
    ['bytes=299990-', 299_990, 300_000],
    ['bytes=-10', 299_990, 300_000],
    ['bytes=299000-999999', 299_000, 300_000],
  ])('serves the range %s', async (range, from, to) => {
    const res = await fetch(`${s.url}/fedora.qcow2`, { headers: { Range: range } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes ${from}-${to - 1}/${disk.length}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(disk.subarray(from, to))).toBe(true);
  });

  it('refuses a range past the end', async () => {
    const res = await fetch(`${s.url}/fedora.qcow2`, { headers: { Range: 'bytes=400000-' } });
    expect(res.status).toBe(416);
  });

  it('answers /info with its environment and 404 for anything else', async () => {
    const info = (await (await fetch(`${s.url}/info`)).json()) as { env: string[] };
    expect(info.env).toContain('INSTANCETYPE_KUBEVIRT_IO_DEFAULT_INSTANCETYPE=u1.small');
    expect((await fetch(`${s.url}/disk.img`)).status).toBe(404);
  });

  it('exits once the done file appears, removing it and the ready file', async () => {
    await writeFile(s.done, '');
    const { code } = await s.exited;
    expect(code).toBe(0);
    expect([existsSync(s.done), existsSync(s.ready)]).toEqual([false, false]);
  });
});

describe('cdi-containerimage-server refusals', () => {
  it.each([
    ['two files', ['a.img', 'b.img']],
    ['no file', []],
  ])('refuses an image directory with %s', async (_what, files) => {
    const dir = await mkdtemp(join(work, 'bad-'));
    for (const f of files) await writeFile(join(dir, f), 'x');
    const s = await start(dir);
    const { code, stderr } = await s.exited;
    expect(code).toBe(1);
    expect(stderr).toContain('Invalid container image');
    expect(existsSync(s.ready)).toBe(false);
  });
});
