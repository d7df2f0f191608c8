// SPDX-License-Identifier: Apache-2.0
/**
 * A small structured logger: one JSON object per line on stderr (what klog-style collectors and
 * `kubectl logs` users grep), or plain text on a terminal. Created once per process at its edge
 * (cmd/cli.ts) and passed down in the verb's context; modules never create their own.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVEL_ORDER: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Fields attached to a log line. */
export type LogFields = Readonly<Record<string, unknown>>;

/** What every module receives. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly level?: LogLevel;
  readonly component: string;
  /** Where lines go; stderr by default. */
  readonly write?: (line: string) => void;
  /** JSON lines (default) or human text. */
  readonly format?: 'json' | 'text';
}

/** Creates the process's logger. */
export function createLogger(options: LoggerOptions): Logger {
  const min = LEVEL_ORDER[options.level ?? 'info'];
  const write = options.write ?? ((line: string): void => void process.stderr.write(line));
  const format = options.format ?? 'json';
  const make = (base: LogFields): Logger => {
    const log = (level: LogLevel, msg: string, fields?: LogFields): void => {
      if (LEVEL_ORDER[level] < min) return;
      const all = { ...base, ...fields };
      if (format === 'json') {
        write(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...all })}\n`);
      } else {
        const extra = Object.entries(all)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ');
        write(`${level}: ${msg}${extra === '' ? '' : ` ${extra}`}\n`);
      }
    };
    return {
      debug: (m, f) => log('debug', m, f),
      info: (m, f) => log('info', m, f),
      warn: (m, f) => log('warn', m, f),
      error: (m, f) => log('error', m, f),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make({ component: options.component });
}

/** A logger that drops everything (tests, library defaults). */
export const silentLogger: Logger = createLogger({
  component: 'silent',
  level: 'error',
  write: () => undefined,
});
