// SPDX-License-Identifier: Apache-2.0
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cloneTokenProblem, signCloneToken } from './clone-token.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const grant = {
  sourceNamespace: 'golden',
  sourceName: 'fedora',
  targetNamespace: 'vms',
  targetName: 'disk',
};
const NOW = 1_800_000_000;

describe('clone tokens', () => {
  it.each([
    { what: 'the clone it was made for', check: grant, now: NOW, want: undefined },
    { what: 'after 5 minutes', check: grant, now: NOW + 320, want: /error verifying token: .*exp/ },
    {
      what: 'another target',
      check: { ...grant, targetName: 'x' },
      now: NOW,
      want: /^invalid token$/,
    },
    {
      what: 'another source',
      check: { ...grant, sourceNamespace: 'x' },
      now: NOW,
      want: /^invalid token$/,
    },
  ])('a short token checked for $what', async ({ check, now, want }) => {
    const token = await signCloneToken(privateKey, grant, NOW);
    const problem = await cloneTokenProblem(publicKey, token, check, now);
    if (want === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(want);
  });

  it('refuses a token signed with another key', async () => {
    const token = await signCloneToken(other.privateKey, grant, NOW);
    expect(await cloneTokenProblem(publicKey, token, grant, NOW)).toMatch(
      /^error verifying token: .*signature/,
    );
  });

  it('makes extended tokens that live for years and fit one DataVolume only', async () => {
    const token = await signCloneToken(privateKey, grant, NOW, { uid: 'dv-1' });
    const later = NOW + 365 * 24 * 3600;
    expect(
      await cloneTokenProblem(publicKey, token, grant, later, { uid: 'dv-1' }),
    ).toBeUndefined();
    expect(await cloneTokenProblem(publicKey, token, grant, later, { uid: 'dv-2' })).toBe(
      'invalid token',
    );
    // A short token is no extended one (issuer), and the other way round.
    const short = await signCloneToken(privateKey, grant, NOW);
    expect(await cloneTokenProblem(publicKey, short, grant, NOW, { uid: 'dv-1' })).toMatch(/iss/);
    expect(await cloneTokenProblem(publicKey, token, grant, NOW)).toMatch(/iss/);
  });
});
