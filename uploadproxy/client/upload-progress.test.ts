// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { formatDuration, renderUploadProgress } from './upload-progress.js';

describe('formatDuration', () => {
  it.each([
    { what: 'seconds', s: 6.4, out: '6s' },
    { what: 'minutes', s: 245, out: '4m05s' },
    { what: 'hours', s: 3723, out: '1h02m03s' },
    { what: 'unknown', s: Number.NaN, out: '--' },
  ])('$what', ({ s, out }) => {
    expect(formatDuration(s)).toBe(out);
  });
});

describe('renderUploadProgress', () => {
  it.each([
    {
      what: 'half way at 1 MiB/s',
      p: { sent: 5 << 20, total: 10 << 20, sentThisRun: 5 << 20, elapsedMs: 5000 },
      out: '[###############...............]  50.00%  5Mi/10Mi  1Mi/s  ETA 5s',
    },
    {
      what: 'the start, no rate yet',
      p: { sent: 0, total: 1024, sentThisRun: 0, elapsedMs: 0 },
      out: '[..............................]   0.00%  0/1Ki  0/s  ETA --',
    },
    {
      what: 'done',
      p: { sent: 1024, total: 1024, sentThisRun: 1024, elapsedMs: 1000 },
      out: '[##############################] 100.00%  1Ki/1Ki  1Ki/s  ETA 0s',
    },
  ])('$what', ({ p, out }) => {
    expect(renderUploadProgress(p)).toBe(out);
  });
});
