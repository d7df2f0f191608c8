// SPDX-License-Identifier: Apache-2.0
/**
 * Quiet retries for the CLI. A pod logs every retry as a warning (what `kubectl logs` readers
 * want); a person at a terminal wants one line saying the tool is retrying, redrawn in place,
 * not five warnings before the real error. Retrying sources log `... retrying` warnings with a
 * numeric `attempt` field; this logger turns those into that one line and passes the rest on.
 */
import type { LogFields, Logger } from '../../common/logger.js';

/** The status line of one retry: `retrying (attempt 2, next try in 2s): connect ECONNREFUSED`. */
export function renderRetryLine(msg: string, fields: LogFields): string {
  const attempt = typeof fields['attempt'] === 'number' ? fields['attempt'] : 0;
  const delayMs = typeof fields['delayMs'] === 'number' ? fields['delayMs'] : 0;
  const error = typeof fields['error'] === 'string' ? `: ${fields['error']}` : '';
  const what = msg.replace(/,? retrying$/, '');
  return `${what}, retrying (attempt ${attempt}, next try in ${Math.round(delayMs / 1000)}s)${error}`;
}

/** True for a retrying source's warning. */
function isRetry(fields: LogFields | undefined): fields is LogFields {
  return typeof fields?.['attempt'] === 'number';
}

/**
 * A logger for sources used by the CLI: retry warnings become one line on `stream` (rewritten in
 * place on a terminal, printed once otherwise); everything else goes to `logger`. `clear()`
 * removes the line on a terminal before the next output.
 */
export function quietRetryLogger(
  logger: Logger,
  stream: NodeJS.WriteStream,
): { readonly logger: Logger; readonly clear: () => void } {
  let shown = false;
  const tty = stream.isTTY;
  const wrap = (base: Logger): Logger => ({
    debug: (m, f) => base.debug(m, f),
    info: (m, f) => base.info(m, f),
    error: (m, f) => base.error(m, f),
    warn: (m, f) => {
      if (!isRetry(f)) {
        base.warn(m, f);
        return;
      }
      base.debug(m, f);
      const line = renderRetryLine(m, f);
      if (tty) stream.write(`\r${line.slice(0, Math.max(20, (stream.columns || 80) - 1))}\x1b[K`);
      else if (!shown) stream.write(`${line}\n`);
      shown = true;
    },
    child: (fields) => wrap(base.child(fields)),
  });
  return {
    logger: wrap(logger),
    clear: () => {
      if (tty && shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}
