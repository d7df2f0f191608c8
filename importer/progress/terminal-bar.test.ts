// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { fitBarLine, renderProgressLine } from './terminal-bar.js';

const MiB = 1 << 20;

describe('renderProgressLine', () => {
  it.each([
    {
      what: 'half way, with an ETA and bytes written',
      view: {
        progress: { done: 5 * MiB, total: 10 * MiB, percent: 50 },
        elapsedMs: 5000,
        written: 3 * MiB,
      },
      line: '[###############...............]  50.00%  5Mi/10Mi received  1Mi/s  ETA 5s  3Mi written',
    },
    {
      what: 'all received, still writing (a compressed source)',
      view: {
        progress: { done: 10 * MiB, total: 10 * MiB, percent: 99.99 },
        elapsedMs: 10_000,
        written: 200 * MiB,
      },
      line: '[##############################]  99.99%  10Mi/10Mi received  1Mi/s  writing  200Mi written',
    },
    {
      what: 'complete',
      view: { progress: { done: 10 * MiB, total: 10 * MiB, percent: 100 }, elapsedMs: 10_000 },
      line: '[##############################] 100.00%  10Mi/10Mi received  1Mi/s  done',
    },
    {
      what: 'an unknown total',
      view: { progress: { done: 3 * MiB, total: undefined, percent: undefined }, elapsedMs: 1000 },
      line: '3Mi received  3Mi/s',
    },
  ])('$what', ({ view, line }) => {
    expect(renderProgressLine(view, 200)).toBe(line);
  });
});

describe('fitBarLine', () => {
  const text = '5Mi/10Mi received  1Mi/s  ETA 5s';
  it.each([
    { columns: 120, bar: 30 },
    { columns: 60, bar: 15 },
    { columns: 45, bar: 0 },
    { columns: 20, bar: 0 },
  ])('fits $columns columns (bar of $bar)', ({ columns, bar }) => {
    const line = fitBarLine(0.5, text, columns);
    expect(line.length).toBeLessThan(columns);
    const drawn = /^\[([#.]+)\]/.exec(line)?.[1] ?? '';
    expect(drawn.length).toBe(bar);
  });
});
