// SPDX-License-Identifier: Apache-2.0
/**
 * The `cdi` command line without the process: finds the verb, takes the global flags
 * (`-h/--help`, `-v/--verbose`, `--log-level`, `--version`), builds the verb's context and runs
 * it. Errors are reported here, once: one line on stderr naming the verb and the cause. Exit
 * codes follow Unix and kubectl: 0 success, 1 failure, 2 usage error, 130 after SIGINT.
 */
import { createLogger, type LogLevel } from '../common/logger.js';
import { errorCode, errorMessage } from '../common/errors.js';
import { isUsageError, takeGlobalFlags, UsageError } from '../common/cli/args.js';
import type { CommandContext } from '../common/cli/context.js';

/** A verb: its arguments (global flags removed) and the context; resolves with the exit code. */
export type Verb = (argv: readonly string[], ctx: CommandContext) => Promise<number>;

/** Exit codes of every verb. */
export const ExitCodes = Object.freeze({
  Success: 0,
  Failure: 1,
  Usage: 2,
  /** 128 + SIGINT, what shells report for a command stopped with Ctrl-C. */
  Interrupted: 130,
});

interface VerbEntry {
  readonly load: () => Promise<Verb>;
  /** One line for `cdi --help`. */
  readonly summary: string;
  /** `cdi VERB --help`. */
  readonly usage: string;
  /** Long-running processes of a pod: JSON logs at info; tools log text at warn. */
  readonly pod: boolean;
}

const GLOBAL_HELP = `global flags:
  -h, --help            show this help
  -v, --verbose         log debug lines on stderr
      --log-level L     debug, info, warn or error
`;

/** Verbs load lazily so `cdi import` never loads the controller's Kubernetes client. */
export const VERBS: Readonly<Record<string, VerbEntry>> = {
  import: {
    load: async () => (await import('../importer/cli/import-command.js')).importCommand,
    summary: 'import a disk image into a file, block device or directory',
    pod: false,
    usage: `usage: cdi import --source URL|PATH --dest PATH [flags]

flags:
      --source URL|PATH           http(s)://, s3://, gs://, docker:// or a local path
      --dest PATH                 image file, block device, or directory (--content-type archive)
      --source-kind K             http, s3, gcs, registry or file (default: from the URL)
      --size Q                    volume size, e.g. 20Gi (the image is grown to it)
      --content-type T            kubevirt (default) or archive
      --checksum ALG:HEX          verify the transferred bytes (md5, sha1, sha256, sha512)
      --cert-dir DIR              extra CA certificates for TLS
      --insecure-tls              skip TLS verification
      --access-key-id ID          S3 credentials (or IMPORTER_ACCESS_KEY_ID)
      --secret-key KEY            S3 credentials (or IMPORTER_SECRET_KEY)
      --gcs-key FILE              GCS service-account key JSON (or GOOGLE_APPLICATION_CREDENTIALS)
      --gcs-endpoint HOST:PORT    GCS endpoint replacing Google's (or STORAGE_EMULATOR_HOST)
      --arch A                    registry image architecture
      --filesystem-overhead F     share of --size kept free, e.g. 0.06
      --preallocation             allocate the whole image
      --scratch-dir DIR           where the streaming converter may spill
      --extra-header 'N: V'       extra HTTP header (repeatable)
      --retries N                 retries of a refused connection (default 5)
      --json                      print the result as one JSON object
  -q, --quiet                     no progress bar
`,
  },
  info: {
    load: async () => (await import('../importer/cli/info-command.js')).infoCommand,
    summary: 'show format, virtual size and more, like qemu-img info',
    pod: false,
    usage: `usage: cdi info SOURCE [--json] [--source-kind K] [--insecure-tls] [--cert-dir DIR]\n`,
  },
  convert: {
    load: async () => (await import('../importer/cli/convert-command.js')).convertCommand,
    summary: 'convert any supported image to raw, like qemu-img convert -O raw',
    pod: false,
    usage: `usage: cdi convert SRC DEST [--json] [-q|--quiet]\n`,
  },
  upload: {
    load: async () => (await import('../uploadproxy/client/main.js')).uploadMain,
    summary: 'upload a local image to a DataVolume or PVC (resumable), like virtctl image-upload',
    pod: false,
    usage: `usage: cdi upload dv|pvc NAME --image-path FILE [flags]
       cdi upload (--dv NAME | --pvc NAME) --image-path FILE [flags]

flags:
  -n, --namespace NS              namespace (default: default)
      --image-path FILE           the image to upload (also --file)
      --archive-path FILE         a tar archive to extract into the volume (content type archive)
      --size Q                    size of a DataVolume or PVC to create, e.g. 10Gi
      --storage-class SC          storage class of the volume to create
      --access-mode M             ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod (or RWO ...)
      --volume-mode M             filesystem or block
      --block-volume              same as --volume-mode block
      --force-bind                bind a WaitForFirstConsumer claim at once
      --no-create                 upload to an existing volume only
      --uploadproxy-url URL       the upload proxy (default: CDIConfig status.uploadProxyURL)
      --ca-file F                 CA of the upload proxy
      --insecure                  skip TLS verification of the upload proxy
      --async                     return once the bytes are received
      --checksum sha256:HEX       verified by the upload server before the disk is published
      --kubeconfig F              kubeconfig (default: KUBECONFIG, ~/.kube/config)
      --wait-secs N               how long to wait for the upload pod (default 300)
`,
  },
  importer: {
    load: async () => (await import('../importer/cli/importer-pod.js')).importerPodCommand,
    summary: 'the importer pod entry (configured by CDI environment variables)',
    pod: true,
    usage: `usage: cdi importer\n\nThe importer pod's entry; configured by CDI's environment variables (README).\n`,
  },
  'clone-source': {
    load: async () => (await import('../importer/cli/clone-source.js')).cloneSourceCommand,
    summary: 'the clone source pod entry: streams a claim to an upload server',
    pod: true,
    usage: `usage: cdi clone-source\n\nThe clone source pod's entry; configured by CDI's cloner environment variables.\n`,
  },
  uploadserver: {
    load: async () => (await import('../uploadproxy/server/main.js')).uploadServerMain,
    summary: 'the upload server in the upload pod',
    pod: true,
    usage: `usage: cdi uploadserver [--insecure]\n\nThe upload pod's entry; configured by CDI's environment variables.\n`,
  },
  uploadproxy: {
    load: async () => (await import('../uploadproxy/proxy/main.js')).uploadProxyMain,
    summary: 'the upload proxy (token check, routing, mTLS)',
    pod: true,
    usage: `usage: cdi uploadproxy --tls-cert-file F --tls-key-file F [--listen 0.0.0.0:8443]
  [--token-public-key-file F] --client-cert-file F --client-key-file F --upload-server-ca-file F
  [--kubeconfig F] [--cluster-domain svc.cluster.local] [--upload-server-address dns|cluster-ip]
  [--static-upload-server URL] [--insecure]
`,
  },
  apiserver: {
    load: async () => (await import('../uploadproxy/apiserver/main.js')).apiServerMain,
    summary: 'the UploadTokenRequest API (aggregated)',
    pod: true,
    usage: `usage: cdi apiserver --tls-cert-file F --tls-key-file F [--listen 0.0.0.0:8443]
  [--token-key-file F] [--public-key-out F] [--requestheader-client-ca-file F]
  (--kubeconfig F | --in-cluster | --insecure-allow-all) [--insecure]
`,
  },
  controller: {
    load: async () => (await import('../controller/main.js')).controllerMain,
    summary: 'the DataVolume, import, upload, DataSource and StorageProfile controller',
    pod: true,
    usage: `usage: cdi controller [--kubeconfig F] [-n|--namespace NS] [--no-leader-elect]\n`,
  },
};

/** `cdi --help`. */
export function usage(): string {
  const width = Math.max(...Object.keys(VERBS).map((v) => v.length));
  const verbs = Object.entries(VERBS)
    .map(([name, v]) => `  ${name.padEnd(width)}  ${v.summary}`)
    .join('\n');
  return `usage: cdi VERB [flags]\n\nverbs:\n${verbs}\n\n${GLOBAL_HELP}      --version         print the version\n\nRun 'cdi VERB --help' for a verb's flags.\n`;
}

/** What {@link runCli} needs from the process. */
export interface CliProcess {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WriteStream;
  readonly tmpDir: string;
  readonly version: string;
  /** Aborts when the process is told to stop. */
  readonly signal: AbortSignal;
  /** True once SIGINT was received. */
  readonly interrupted: () => boolean;
}

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

type VerbSetup =
  | { readonly help: true }
  | { readonly help: false; readonly level: LogLevel; readonly args: readonly string[] };

/** The global flags of one verb's command line: help, or the log level and the verb's own args. */
function verbSetup(
  verb: VerbEntry,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): VerbSetup {
  const global = takeGlobalFlags(argv);
  if (global.help) return { help: true };
  const wanted = global.logLevel ?? (global.verbose ? 'debug' : env['CDI_LOG_LEVEL']);
  const found = LOG_LEVELS.find((l) => l === wanted);
  if (wanted !== undefined && found === undefined)
    throw new UsageError(`--log-level must be ${LOG_LEVELS.join(', ')}, got ${wanted}`);
  return { help: false, level: found ?? (verb.pod ? 'info' : 'warn'), args: global.rest };
}

/** Runs `cdi ARGV`; resolves with the exit code, never rejects. */
export async function runCli(proc: CliProcess): Promise<number> {
  const [verbName, ...rest] = proc.argv;
  if (verbName === undefined) {
    proc.stderr.write(usage());
    return ExitCodes.Usage;
  }
  if (verbName === '--help' || verbName === '-h' || verbName === 'help') {
    proc.stdout.write(usage());
    return ExitCodes.Success;
  }
  if (verbName === '--version' || verbName === 'version') {
    proc.stdout.write(`cdi ${proc.version}\n`);
    return ExitCodes.Success;
  }
  const verb = VERBS[verbName];
  if (verb === undefined) {
    proc.stderr.write(
      `cdi: unknown verb ${JSON.stringify(verbName)}\nRun 'cdi --help' for the verbs.\n`,
    );
    return ExitCodes.Usage;
  }
  const fail = (err: unknown, code: number): number => {
    proc.stderr.write(`cdi ${verbName}: ${errorMessage(err).split('\n')[0] ?? ''}\n`);
    if (code === ExitCodes.Usage) proc.stderr.write(`Run 'cdi ${verbName} --help' for usage.\n`);
    return code;
  };
  let setup: VerbSetup;
  try {
    setup = verbSetup(verb, rest, proc.env);
  } catch (err) {
    return fail(err, ExitCodes.Usage);
  }
  if (setup.help) {
    proc.stdout.write(`${verb.usage}\n${GLOBAL_HELP}`);
    return ExitCodes.Success;
  }
  const { level, args } = setup;
  const logger = createLogger({
    component: verbName,
    level,
    format: verb.pod ? 'json' : 'text',
    write: (line) => void proc.stderr.write(line),
  });
  const env = proc.env;
  const ctx: CommandContext = {
    env,
    stdout: proc.stdout,
    stderr: proc.stderr,
    logger,
    signal: proc.signal,
    tmpDir: proc.tmpDir,
    proxy: {
      ...(env['http_proxy'] === undefined ? {} : { httpProxy: env['http_proxy'] }),
      ...(env['https_proxy'] === undefined ? {} : { httpsProxy: env['https_proxy'] }),
      ...(env['no_proxy'] === undefined ? {} : { noProxy: env['no_proxy'] }),
    },
  };
  try {
    const code = await (await verb.load())(args, ctx);
    return proc.interrupted() ? ExitCodes.Interrupted : code;
  } catch (err) {
    logger.debug('failure detail', {
      code: errorCode(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
    if (isUsageError(err)) return fail(err, ExitCodes.Usage);
    return fail(err, proc.interrupted() ? ExitCodes.Interrupted : ExitCodes.Failure);
  }
}
