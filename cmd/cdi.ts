#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/**
 * The one `cdi` binary (like CDI's `cmd/`): parses the verb, builds the process context (logger,
 * AbortSignal wired to SIGINT/SIGTERM, env) and runs the verb. Errors are reported here, once:
 * one line on stderr naming the cause, and a non-zero exit.
 */
import { tmpdir } from 'node:os';
import { createLogger, type LogLevel } from '../common/logger.js';
import { errorCode, errorMessage } from '../common/errors.js';
import type { CommandContext } from '../common/cli/context.js';

type Verb = (argv: readonly string[], ctx: CommandContext) => Promise<number>;

/** Verbs load lazily so `cdi import` never loads the controller's Kubernetes client. */
const VERBS: Readonly<
  Record<string, { readonly load: () => Promise<Verb>; readonly help: string }>
> = {
  import: {
    load: async () => (await import('../importer/cli/import-command.js')).importCommand,
    help: 'import --source URL|PATH --dest PATH [...]  import a disk image into a file, block device or directory',
  },
  info: {
    load: async () => (await import('../importer/cli/info-command.js')).infoCommand,
    help: 'info SOURCE [--json]                        show format, virtual size and more, like qemu-img info',
  },
  convert: {
    load: async () => (await import('../importer/cli/convert-command.js')).convertCommand,
    help: 'convert SRC DEST                            convert any supported image to raw, like qemu-img convert -O raw',
  },
  'clone-source': {
    load: async () => (await import('../importer/cli/clone-source.js')).cloneSourceCommand,
    help: 'clone-source                                the clone source pod entry: streams a claim to an upload server',
  },
  importer: {
    load: async () => (await import('../importer/cli/importer-pod.js')).importerPodCommand,
    help: 'importer                                    the importer pod entry (configured by CDI env vars)',
  },
  upload: {
    load: async () => (await import('../uploadproxy/client/main.js')).uploadMain,
    help: 'upload --image-path FILE ...                 upload a local image to a DataVolume (resumable)',
  },
  uploadproxy: {
    load: async () => (await import('../uploadproxy/proxy/main.js')).uploadProxyMain,
    help: 'uploadproxy                                 the upload proxy (token check, routing, mTLS)',
  },
  uploadserver: {
    load: async () => (await import('../uploadproxy/server/main.js')).uploadServerMain,
    help: 'uploadserver                                the upload server in the upload pod',
  },
  apiserver: {
    load: async () => (await import('../uploadproxy/apiserver/main.js')).apiServerMain,
    help: 'apiserver                                   the UploadTokenRequest API (aggregated)',
  },
  controller: {
    load: async () => {
      const mod = await import('../controller/main.js');
      return (argv) => mod.main(argv);
    },
    help: 'controller [--kubeconfig F]                 the DataVolume controller',
  },
};

function usage(): string {
  return `usage: cdi VERB [flags]\n\nverbs:\n${Object.values(VERBS)
    .map((v) => `  ${v.help}`)
    .join('\n')}\n`;
}

async function main(): Promise<number> {
  const [verbName, ...rest] = process.argv.slice(2);
  if (verbName === undefined || verbName === '--help' || verbName === '-h' || verbName === 'help') {
    process.stdout.write(usage());
    return verbName === undefined ? 2 : 0;
  }
  const verb = VERBS[verbName];
  if (verb === undefined) {
    process.stderr.write(`cdi: unknown verb ${JSON.stringify(verbName)}\n${usage()}`);
    return 2;
  }
  const podMode = [
    'importer',
    'clone-source',
    'controller',
    'uploadproxy',
    'uploadserver',
    'apiserver',
  ].includes(verbName);
  const level = (process.env['CDI_LOG_LEVEL'] ?? (podMode ? 'info' : 'warn')) as LogLevel;
  const logger = createLogger({ component: verbName, level, format: podMode ? 'json' : 'text' });
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => abort.abort(new Error(`received ${sig}`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const ctx: CommandContext = {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    logger,
    signal: abort.signal,
    tmpDir: tmpdir(),
    proxy: {
      ...(process.env['http_proxy'] === undefined ? {} : { httpProxy: process.env['http_proxy'] }),
      ...(process.env['https_proxy'] === undefined
        ? {}
        : { httpsProxy: process.env['https_proxy'] }),
      ...(process.env['no_proxy'] === undefined ? {} : { noProxy: process.env['no_proxy'] }),
    },
  };
  try {
    return await (
      await verb.load()
    )(rest, ctx);
  } catch (err) {
    process.stderr.write(`cdi ${verbName}: ${errorMessage(err).split('\n')[0] ?? ''}\n`);
    logger.debug('failure detail', {
      code: errorCode(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
    return 1;
  }
}

// Exit explicitly once the verb is done: idle keep-alive sockets or timers of a library must not
// keep a finished import (or a pod) alive.
function exit(code: number): void {
  process.stdout.write('', () => process.exit(code));
}

main().then(exit, (err: unknown) => {
  process.stderr.write(`cdi: ${errorMessage(err)}\n`);
  exit(1);
});
