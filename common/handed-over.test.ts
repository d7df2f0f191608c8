// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';

import { freeHandedOver, handOver, isHandedOver } from './handed-over.js';

/** A buffer that is all of its own memory. */
function own(length: number): Buffer {
  return Buffer.from(new ArrayBuffer(length)).fill(7);
}

describe('hand-over', () => {
  it.each([
    {
      what: 'the whole chunk, freed by itself',
      make: () => own(64),
      sole: false,
      free: (b: Buffer) => b,
      freed: true,
      handed: true,
    },
    {
      what: 'a slice of a handed-over chunk',
      make: () => own(64),
      sole: false,
      free: (b: Buffer) => b.subarray(0, 32),
      freed: false,
      handed: true,
    },
    {
      what: 'the front of its memory, marked sole',
      make: () => own(64).subarray(0, 16),
      sole: true,
      free: (b: Buffer) => b,
      freed: true,
      handed: true,
    },
    {
      what: 'the front of its memory, not marked sole',
      make: () => own(64).subarray(0, 16),
      sole: false,
      free: (b: Buffer) => b,
      freed: false,
      handed: false,
    },
    {
      what: 'a view not at the start of its memory',
      make: () => own(64).subarray(8),
      sole: true,
      free: (b: Buffer) => b,
      freed: false,
      handed: false,
    },
  ])('$what', ({ make, sole, free, freed, handed }) => {
    const chunk = make();
    const length = chunk.length;
    handOver(chunk, { sole });
    freeHandedOver(free(chunk));
    expect(chunk.length).toBe(freed ? 0 : length);
    // Still marked only where the hand-over was taken and nothing freed it.
    expect(isHandedOver(chunk.buffer)).toBe(handed && !freed);
  });

  it('gives the memory back to its producer in a new buffer, which no old view reaches', () => {
    const chunk = own(4096);
    const view = chunk.subarray(0, 100);
    const back: ArrayBuffer[] = [];
    handOver(view, { sole: true, reuse: (m) => back.push(m) });
    freeHandedOver(view);
    expect(back).toHaveLength(1);
    expect(back[0]?.byteLength).toBe(4096);
    expect(back[0]).not.toBe(chunk.buffer);
    expect(new Uint8Array(back[0] ?? new ArrayBuffer(0))[0]).toBe(7);
    expect(chunk.length + view.length).toBe(0);
    // Freed once: a second call finds nothing handed over.
    freeHandedOver(view);
    expect(back).toHaveLength(1);
  });
});
