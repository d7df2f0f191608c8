// SPDX-License-Identifier: Apache-2.0
/** The `cdi upload` progress line: bar, percent, amount, rate and ETA (pure rendering). */
import { formatBytes } from '../../common/quantity.js';
import { fitBarLine, formatDuration } from '../../importer/progress/terminal-bar.js';

export { formatDuration };

/**
 * Renders `[#####.....]  45.67%  1.2Gi/2.6Gi  118Mi/s  ETA 12s`. The rate counts only bytes sent
 * in this run (`sentThisRun`), so a resumed upload does not claim the skipped bytes as speed.
 * The line fits `columns` (the terminal's width).
 */
export function renderUploadProgress(
  p: {
    readonly sent: number;
    readonly total: number;
    readonly sentThisRun: number;
    readonly elapsedMs: number;
  },
  columns = 80,
): string {
  const fraction = p.total > 0 ? Math.min(1, p.sent / p.total) : 1;
  const rate = p.elapsedMs > 0 ? (p.sentThisRun / p.elapsedMs) * 1000 : 0;
  const eta = rate > 0 ? (p.total - p.sent) / rate : Number.NaN;
  return fitBarLine(
    fraction,
    `${formatBytes(p.sent)}/${formatBytes(p.total)}  ${formatBytes(rate)}/s  ETA ${formatDuration(eta)}`,
    columns,
  );
}
