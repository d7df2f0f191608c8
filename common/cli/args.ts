// SPDX-License-Identifier: Apache-2.0
import { readFile } from 'node:fs/promises';
import { CdiError, ErrorCodes, errorMessage } from '../errors.js';

/** Declares one flag: `string` takes a value, `boolean` does not. */
export type FlagSpec = Readonly<Record<string, 'string' | 'boolean'>>;

/** Parsed command line: flag values by name and the positional arguments. */
export interface ParsedArgs {
  readonly flags: Readonly<Record<string, string | boolean>>;
  readonly positionals: readonly string[];
}

/**
 * A small, strict `--flag value` / `--flag=value` parser: unknown flags and missing values are
 * errors (`CDI_INVALID_ARGUMENT`) naming the flag, never silently ignored.
 */
export function parseArgs(argv: readonly string[], spec: FlagSpec): ParsedArgs {
  const flags: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const kind = spec[name];
    if (kind === undefined)
      throw new CdiError(ErrorCodes.InvalidArgument, `unknown flag --${name}`);
    if (kind === 'boolean') {
      if (eq >= 0) throw new CdiError(ErrorCodes.InvalidArgument, `flag --${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined)
      throw new CdiError(ErrorCodes.InvalidArgument, `flag --${name} needs a value`);
    flags[name] = value;
  }
  return { flags, positionals };
}

/** A string flag's value, if given. */
export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags[name];
  return typeof v === 'string' ? v : undefined;
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
