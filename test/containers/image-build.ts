// SPDX-License-Identifier: Apache-2.0
/**
 * Builds the cdi image once per source state for every suite that needs it: `npm run image`
 * writes into a shared work directory, so concurrent builds take a lock, and an archive built
 * from the same sources (commit and uncommitted changes) is reused, as the build is
 * reproducible. The image suite and the runc e2e suite share one build this way.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MAX_BUFFER = 64 << 20;
/** How often a waiting build looks at the lock, and how long it waits at most. */
const LOCK_POLL_MS = 1_000;
const LOCK_WAIT_MS = 20 * 60_000;

/** A digest of the checkout's sources: HEAD, the diff against it and the untracked files. */
async function sourceState(root: string): Promise<string> {
  const git = async (...args: string[]): Promise<string> =>
    (await run('git', ['-C', root, ...args], { maxBuffer: MAX_BUFFER })).stdout;
  const hash = createHash('sha256');
  hash.update(await git('rev-parse', 'HEAD'));
  hash.update(await git('diff', 'HEAD', '--binary'));
  hash.update(await git('ls-files', '--others', '--exclude-standard'));
  return hash.digest('hex');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Takes `lock` (a directory holding the owner's pid); a dead owner's lock is broken. */
async function acquire(lock: string): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, 'pid'), String(process.pid));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => 'NaN'));
    if (Number.isInteger(owner) && !alive(owner)) {
      await rm(lock, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for the image build lock ${lock}`);
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
}

/**
 * Returns `output` holding the image of the current sources, building it with
 * `scripts/build-image.mjs` unless the archive there was built from the same sources; `log`
 * receives the build's summary lines.
 */
export async function buildImageOnce(
  root: string,
  output: string,
  log: (line: string) => void = () => undefined,
): Promise<string> {
  const stamp = `${output}.source`;
  const lock = join(root, '.image', 'build.lock');
  await mkdir(dirname(output), { recursive: true });
  await mkdir(dirname(lock), { recursive: true });
  const state = await sourceState(root);
  await acquire(lock);
  try {
    const built = await readFile(stamp, 'utf8').catch(() => '');
    if (built === state && existsSync(output)) {
      log(`image: ${output} already built from these sources`);
      return output;
    }
    await rm(stamp, { force: true });
    const { stdout } = await run(
      process.execPath,
      [join(root, 'scripts', 'build-image.mjs'), '--output', output],
      { cwd: root, maxBuffer: MAX_BUFFER },
    );
    for (const line of stdout.split('\n')) if (line.startsWith('image')) log(line);
    await writeFile(stamp, state);
    return output;
  } finally {
    await rm(join(lock, 'pid'), { force: true });
    await rmdir(lock).catch(() => undefined);
  }
}
