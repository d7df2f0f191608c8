// SPDX-License-Identifier: Apache-2.0
/** The `cdi upload` progress line: bar, percent, amount, rate and ETA (pure rendering). */
import { formatBytes } from '../../common/quantity.js';

const BAR_WIDTH = 30;

/** `1h02m03s` / `4m05s` / `6s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m${String(rest).padStart(2, '0')}s`;
  if (m > 0) return `${m}m${String(rest).padStart(2, '0')}s`;
  return `${rest}s`;
}

/**
 * Renders `[#####.....]  45.67%  1.2Gi/2.6Gi  118Mi/s  ETA 12s`. The rate counts only bytes sent
 * in this run (`sentThisRun`), so a resumed upload does not claim the skipped bytes as speed.
 */
export function renderUploadProgress(p: {
  readonly sent: number;
  readonly total: number;
  readonly sentThisRun: number;
  readonly elapsedMs: number;
}): string {
  const fraction = p.total > 0 ? Math.min(1, p.sent / p.total) : 1;
  const filled = Math.round(fraction * BAR_WIDTH);
  const rate = p.elapsedMs > 0 ? (p.sentThisRun / p.elapsedMs) * 1000 : 0;
  const eta = rate > 0 ? (p.total - p.sent) / rate : Number.NaN;
  return (
    `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${(fraction * 100).toFixed(2).padStart(6)}%  ` +
    `${formatBytes(p.sent)}/${formatBytes(p.total)}  ${formatBytes(rate)}/s  ETA ${formatDuration(eta)}`
  );
}
