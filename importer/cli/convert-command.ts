// SPDX-License-Identifier: Apache-2.0
import { dirname } from 'node:path';
import { ContentTypes, SourceKinds } from '../../common/contract.js';
import { runImport } from '../pipeline/import.js';
import { TerminalProgressBar } from '../progress/terminal-bar.js';
import { FileSource } from '../sources/file.js';
import { boolFlag, parseArgs } from '../../common/cli/args.js';
import type { CommandContext } from '../../common/cli/context.js';
import { resolveTarget } from './import-command.js';

/** `cdi convert SRC DEST` converts every supported local image (compressed or not) to raw, like `qemu-img convert -O raw`. */
export async function convertCommand(
  argv: readonly string[],
  ctx: CommandContext,
): Promise<number> {
  const args = parseArgs(
    argv,
    { json: 'boolean', quiet: { type: 'boolean', short: 'q' } },
    { min: 2, max: 2, names: 'SRC DEST' },
  );
  const [src = '', dest = ''] = args.positionals;
  const json = boolFlag(args, 'json');
  const target = await resolveTarget(dest, ContentTypes.Kubevirt);
  const bar =
    !json && !boolFlag(args, 'quiet') && ctx.stderr.isTTY
      ? new TerminalProgressBar(ctx.stderr)
      : undefined;
  try {
    const result = await runImport({
      source: new FileSource({ path: src }),
      sourceKind: SourceKinds.File,
      contentType: ContentTypes.Kubevirt,
      target,
      filesystemOverhead: 0,
      preallocation: false,
      spillDir: target.kind === 'file' ? dirname(target.path) : ctx.tmpDir,
      signal: ctx.signal,
      logger: ctx.logger,
      ...(bar === undefined ? {} : { onProgress: (p) => bar.update(p) }),
    });
    if (json)
      ctx.stdout.write(`${JSON.stringify({ source: src, destination: dest, ...result })}\n`);
  } finally {
    bar?.finish();
  }
  return 0;
}
