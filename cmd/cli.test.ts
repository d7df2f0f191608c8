// SPDX-License-Identifier: Apache-2.0
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCodes, runCli } from './cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cdi-cli-'));
  await writeFile(join(dir, 'disk.raw'), Buffer.alloc(1 << 20, 7));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  return { stream, text: () => text };
}

async function cli(
  argv: readonly string[],
  o: { readonly aborted?: boolean; readonly env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = capture();
  const err = capture();
  const abort = new AbortController();
  if (o.aborted === true) abort.abort(new Error('received SIGINT'));
  const code = await runCli({
    argv,
    env: o.env ?? {},
    stdout: out.stream,
    stderr: err.stream as unknown as NodeJS.WriteStream,
    tmpDir: dir,
    version: '9.9.9',
    signal: abort.signal,
    interrupted: () => o.aborted === true,
  });
  return { code, stdout: out.text(), stderr: err.text() };
}

describe('cdi exit codes and messages', () => {
  it.each([
    { what: 'no verb', argv: [], code: ExitCodes.Usage, stderr: /^usage: cdi VERB/ },
    {
      what: 'an unknown verb',
      argv: ['frob'],
      code: ExitCodes.Usage,
      stderr: /unknown verb "frob"/,
    },
    {
      what: 'cdi --help',
      argv: ['--help'],
      code: ExitCodes.Success,
      stdout: /verbs:[\s\S]*upload/,
    },
    { what: 'cdi -h', argv: ['-h'], code: ExitCodes.Success, stdout: /usage: cdi VERB/ },
    {
      what: 'cdi --version',
      argv: ['--version'],
      code: ExitCodes.Success,
      stdout: /^cdi 9\.9\.9\n$/,
    },
    { what: 'import --help', argv: ['import', '--help'], code: 0, stdout: /--source URL\|PATH/ },
    {
      what: 'import -h among flags',
      argv: ['import', '--json', '-h'],
      code: 0,
      stdout: /usage: cdi import/,
    },
    { what: 'info -h', argv: ['info', '-h'], code: 0, stdout: /usage: cdi info SOURCE/ },
    { what: 'upload -h shows -n', argv: ['upload', '-h'], code: 0, stdout: /-n, --namespace NS/ },
    // The pod entry must not run (and write a termination log) when help was asked for.
    {
      what: 'importer --help',
      argv: ['importer', '--help'],
      code: 0,
      stdout: /usage: cdi importer/,
    },
    { what: 'controller -h', argv: ['controller', '-h'], code: 0, stdout: /--no-leader-elect/ },
    {
      what: 'importer with an argument',
      argv: ['importer', '--source', 'x'],
      code: ExitCodes.Usage,
      stderr: /^cdi importer: unknown flag --source\n/,
    },
    {
      what: 'an unknown flag',
      argv: ['import', '--source', 'x', '--frobnicate'],
      code: ExitCodes.Usage,
      stderr: /^cdi import: unknown flag --frobnicate\nRun 'cdi import --help' for usage\.\n$/,
    },
    {
      what: 'a missing required flag, naming the verb once',
      argv: ['import', '--dest', 'x'],
      code: ExitCodes.Usage,
      stderr: /^cdi import: --source and --dest are required\n/,
    },
    {
      what: 'a stray positional argument',
      argv: ['import', 'extra', '--source', 'a', '--dest', 'b'],
      code: ExitCodes.Usage,
      stderr: /^cdi import: unexpected argument "extra"\n/,
    },
    {
      what: 'a flag without its value',
      argv: ['import', '--source'],
      code: ExitCodes.Usage,
      stderr: /^cdi import: flag --source needs a value\n/,
    },
    {
      what: 'a value on a boolean flag',
      argv: ['convert', 'a', 'b', '--json=yes'],
      code: ExitCodes.Usage,
      stderr: /^cdi convert: flag --json takes no value\n/,
    },
    {
      what: 'too few positionals',
      argv: ['convert', 'a'],
      code: ExitCodes.Usage,
      stderr: /^cdi convert: missing arguments SRC DEST\n/,
    },
    {
      what: 'a bad --log-level',
      argv: ['import', '--log-level', 'loud'],
      code: ExitCodes.Usage,
      stderr: /--log-level must be debug, info, warn, error, got loud/,
    },
    {
      what: 'a controller flag it lacks',
      argv: ['controller', '--frobnicate'],
      code: ExitCodes.Usage,
      stderr: /^cdi controller: unknown flag --frobnicate\n/,
    },
    {
      what: 'an upload with no volume',
      argv: ['upload', '--image-path', 'f'],
      code: ExitCodes.Usage,
      stderr: /^cdi upload: name the volume/,
    },
  ])('$what: exit $code', async ({ argv, code, stdout, stderr }) => {
    const run = await cli(argv);
    expect(run.code).toBe(code);
    if (stdout !== undefined) expect(run.stdout).toMatch(stdout);
    if (stderr !== undefined) expect(run.stderr).toMatch(stderr);
  });

  it('a failure exits 1 with one line naming the verb once', async () => {
    const run = await cli([
      'import',
      '--source',
      join(dir, 'missing.img'),
      '--dest',
      join(dir, 'o.img'),
    ]);
    expect(run.code).toBe(ExitCodes.Failure);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^cdi import: (?!.*cdi import)/);
  });

  it('success exits 0', async () => {
    const run = await cli(['convert', join(dir, 'disk.raw'), join(dir, 'out.img'), '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(ExitCodes.Success);
  });

  it('an import interrupted by SIGINT exits 130', async () => {
    const run = await cli(['convert', join(dir, 'disk.raw'), join(dir, 'int.img')], {
      aborted: true,
    });
    expect(run.code).toBe(ExitCodes.Interrupted);
  });

  it('-v turns on debug lines', async () => {
    const quiet = await cli([
      'import',
      '--source',
      join(dir, 'nope'),
      '--dest',
      join(dir, 'q.img'),
    ]);
    const verbose = await cli([
      'import',
      '-v',
      '--source',
      join(dir, 'nope'),
      '--dest',
      join(dir, 'v.img'),
    ]);
    expect(quiet.stderr).not.toMatch(/^debug:/m);
    expect(verbose.stderr).toMatch(/^debug:/m);
  });
});
