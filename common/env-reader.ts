// SPDX-License-Identifier: Apache-2.0
import { CdiError, ErrorCodes, errorMessage } from './errors.js';
import { parseQuantity } from './quantity.js';

/**
 * Reads a process's environment once, collecting every problem instead of stopping at the first,
 * so a pod's termination message lists all bad variables (CONTRIBUTING.md). Used by each
 * component's `config.ts`; nothing else reads `process.env`.
 */
export class EnvReader {
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly problems: string[] = [];

  constructor(env: Readonly<Record<string, string | undefined>>) {
    this.#env = env;
  }

  /** The value, with empty strings treated as unset (Kubernetes renders unset values as ""). */
  get(name: string): string | undefined {
    const value = this.#env[name];
    return value === undefined || value === '' ? undefined : value;
  }

  /** Runs a parser; a throw is recorded as a problem of `name` and `fallback` is returned. */
  attempt<T>(name: string, parse: () => T, fallback: T): T {
    try {
      return parse();
    } catch (err) {
      this.problems.push(`${name}: ${errorMessage(err)}`);
      return fallback;
    }
  }

  /** A Go `strconv.ParseBool` value, false when unset. */
  bool(name: string): boolean {
    return this.attempt(name, () => parseBool(this.get(name)), false);
  }

  /** A Kubernetes quantity in bytes, or undefined when unset. */
  quantity(name: string): number | undefined {
    const text = this.get(name);
    return text === undefined
      ? undefined
      : this.attempt(name, () => parseQuantity(text), undefined);
  }

  /** A fraction in [0, 1) such as FILESYSTEM_OVERHEAD, `fallback` when unset. */
  fraction(name: string, fallback = 0): number {
    const text = this.get(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0 || value >= 1) {
      this.problems.push(`${name}: ${JSON.stringify(text)} is not a fraction in [0, 1)`);
      return fallback;
    }
    return value;
  }

  /** Throws one `CDI_INVALID_CONFIG` listing every problem, if any. */
  throwIfProblems(): void {
    if (this.problems.length > 0)
      throw new CdiError(ErrorCodes.InvalidConfig, this.problems.join('; '));
  }
}

/** Go's strconv.ParseBool, which CDI uses for PREALLOCATION and INSECURE_TLS. */
export function parseBool(value: string | undefined): boolean {
  if (value === undefined) return false;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new Error(`${JSON.stringify(value)} is not a boolean`);
}
