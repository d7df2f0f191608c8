// SPDX-License-Identifier: Apache-2.0
/**
 * The command-line parser of every verb: node:util `parseArgs` in strict mode, so unknown flags,
 * missing values and stray positional arguments are usage errors ({@link UsageError}, exit 2)
 * naming the flag, never silently ignored. Flags follow kubectl and virtctl: `--flag value`,
 * `--flag=value`, and short forms where they have them (`-n` for `--namespace`).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs as parseNodeArgs, type ParseArgsConfig } from 'node:util';
import { CdiError, ErrorCodes, errorMessage } from '../errors.js';

/** One flag: `string` takes a value, `boolean` does not; `short` is its one-letter alias. */
export interface FlagOptions {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** May be given more than once (read with {@link stringsFlag}). */
  readonly multiple?: boolean;
}

/** Declares a verb's flags by long name (without `--`). */
export type FlagSpec = Readonly<Record<string, 'string' | 'boolean' | FlagOptions>>;

/** Parsed command line: flag values by name and the positional arguments. */
export interface ParsedArgs {
  readonly flags: Readonly<Record<string, string | boolean | readonly string[]>>;
  readonly positionals: readonly string[];
}

/** How many positional arguments a verb takes (default: any number, checked by the verb). */
export interface PositionalLimits {
  readonly min?: number;
  readonly max?: number;
  /** Shown in the message, e.g. `SRC DEST`. */
  readonly names?: string;
}

/**
 * A wrong command line: the edge (cmd/cdi.ts) prints it once, points at `--help` and exits 2,
 * as kubectl does. Its code stays `CDI_INVALID_ARGUMENT`.
 */
export class UsageError extends CdiError {
  override readonly name: string = 'UsageError';

  constructor(message: string) {
    super(ErrorCodes.InvalidArgument, message);
  }
}

/** True for a {@link UsageError}. */
export function isUsageError(err: unknown): err is UsageError {
  return err instanceof UsageError;
}

/** Parses `argv` against `spec`; throws {@link UsageError}. */
export function parseArgs(
  argv: readonly string[],
  spec: FlagSpec,
  limits: PositionalLimits = {},
): ParsedArgs {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, kind] of Object.entries(spec)) {
    const o: FlagOptions = typeof kind === 'string' ? { type: kind } : kind;
    options[name] = {
      type: o.type,
      ...(o.short === undefined ? {} : { short: o.short }),
      ...(o.multiple === true ? { multiple: true } : {}),
    };
  }
  const parsed = (() => {
    try {
      return parseNodeArgs({ args: [...argv], options, strict: true, allowPositionals: true });
    } catch (err) {
      throw new UsageError(nodeParseMessage(err));
    }
  })();
  const flags: Record<string, string | boolean | readonly string[]> = {};
  for (const [name, value] of Object.entries(parsed.values)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) flags[name] = value.filter((v) => typeof v === 'string');
    else if (typeof value === 'string' || typeof value === 'boolean') flags[name] = value;
  }
  const positionals = parsed.positionals;
  const { min = 0, max = Number.POSITIVE_INFINITY } = limits;
  if (positionals.length > max) {
    const stray = positionals.slice(max).map((p) => JSON.stringify(p));
    throw new UsageError(
      `unexpected argument${stray.length === 1 ? '' : 's'} ${stray.join(' ')}` +
        (limits.names === undefined ? '' : ` (takes ${limits.names})`),
    );
  }
  if (positionals.length < min) {
    throw new UsageError(`missing argument${min === 1 ? '' : 's'} ${limits.names ?? ''}`.trim());
  }
  return { flags, positionals };
}

/** node:util's messages, shortened to what a user needs (`unknown flag --frobnicate`). */
function nodeParseMessage(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const message = errorMessage(err);
  const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag ${flag ?? message}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (message.includes('argument missing')) return `flag ${flag ?? ''} needs a value`;
      if (message.includes('ambiguous'))
        return `flag ${flag ?? ''} needs a value (write ${flag ?? '--flag'}=VALUE for one starting with -)`;
      return `flag ${flag ?? ''} takes no value`;
    default:
      return message;
  }
}

/** A string flag's value (the last one when repeated), if given. */
export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags[name];
  if (typeof v === 'string') return v;
  return typeof v === 'object' ? v.at(-1) : undefined;
}

/** Every value of a repeatable string flag, in order. */
export function stringsFlag(args: ParsedArgs, name: string): readonly string[] {
  const v = args.flags[name];
  if (typeof v === 'string') return [v];
  return typeof v === 'object' ? v : [];
}

/** A boolean flag's value. */
export function boolFlag(args: ParsedArgs, name: string): boolean {
  return args.flags[name] === true;
}

/** Reads a file named by a flag; `CDI_INVALID_CONFIG` naming the flag when it cannot. */
export async function readFlagFile(args: ParsedArgs, flag: string): Promise<string | undefined> {
  const file = stringFlag(args, flag);
  if (file === undefined) return undefined;
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new CdiError(ErrorCodes.InvalidConfig, `--${flag} ${file}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/** What the edge takes from the command line before the verb sees it (kubectl's global flags). */
export interface GlobalFlags {
  readonly help: boolean;
  readonly verbose: boolean;
  readonly logLevel: string | undefined;
  /** The verb's own arguments, without the global flags. */
  readonly rest: readonly string[];
}

/**
 * Takes `-h/--help`, `-v/--verbose` and `--log-level L` out of a verb's arguments (up to `--`),
 * so every verb has them and none can run by accident when help was asked for.
 */
export function takeGlobalFlags(argv: readonly string[]): GlobalFlags {
  let help = false;
  let verbose = false;
  let logLevel: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === '-h' || arg === '--help') help = true;
    else if (arg === '-v' || arg === '--verbose') verbose = true;
    else if (arg.startsWith('--log-level=')) logLevel = arg.slice('--log-level='.length);
    else if (arg === '--log-level') {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('-'))
        throw new UsageError('flag --log-level needs a value');
      logLevel = value;
      i++;
    } else rest.push(arg);
  }
  return { help, verbose, logLevel, rest };
}
