// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { EnvReader, parseBool } from './env-reader.js';

describe('parseBool (Go strconv.ParseBool)', () => {
  it.each([
    ['1', true],
    ['t', true],
    ['TRUE', true],
    ['True', true],
    ['0', false],
    ['F', false],
    ['false', false],
    [undefined, false],
  ] as const)('%s is %s', (text, expected) => {
    expect(parseBool(text)).toBe(expected);
  });

  it.each(['yes', 'on', 'tru', ' true'])('rejects %j', (text) => {
    expect(() => parseBool(text)).toThrow('is not a boolean');
  });
});

describe('EnvReader', () => {
  it('treats empty strings as unset and parses typed values', () => {
    const r = new EnvReader({ A: '', B: '10Gi', C: '0.06', D: 'true' });
    expect(r.get('A')).toBeUndefined();
    expect(r.quantity('B')).toBe(10 * 1024 ** 3);
    expect(r.fraction('C')).toBe(0.06);
    expect(r.fraction('missing', 0.5)).toBe(0.5);
    expect(r.bool('D')).toBe(true);
    expect(() => r.throwIfProblems()).not.toThrow();
  });

  it('collects every problem into one CDI_INVALID_CONFIG', () => {
    const r = new EnvReader({ SIZE: 'lots', OVERHEAD: '1.5', FLAG: 'maybe' });
    r.quantity('SIZE');
    r.fraction('OVERHEAD');
    r.bool('FLAG');
    expect(r.problems).toHaveLength(3);
    expect(() => r.throwIfProblems()).toThrow(
      /SIZE: .*; OVERHEAD: .*not a fraction.*; FLAG: .*not a boolean/,
    );
    try {
      r.throwIfProblems();
    } catch (err) {
      expect((err as { code: string }).code).toBe('CDI_INVALID_CONFIG');
    }
  });
});
