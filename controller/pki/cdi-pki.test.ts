// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { issueCertificate } from '../../common/x509.js';
import {
  bundleCertificates,
  issuedUnder,
  needsRenewal,
  nextBundle,
  serviceDnsNames,
} from './cdi-pki.js';

const DAY = 86_400_000;
const now = new Date('2026-11-22T00:00:00Z');
const ca = (validDays: number, at = now) =>
  issueCertificate({ commonName: 'ca', usage: 'ca', validForMs: validDays * DAY, now: at });
const current = ca(365);
const older = ca(365, new Date(now.getTime() - 200 * DAY));
const expired = ca(10, new Date(now.getTime() - 20 * DAY));

describe('nextBundle', () => {
  it.each([
    { what: 'a first bundle', previous: undefined, want: [current] },
    { what: 'unchanged', previous: current.certPem, want: [current] },
    {
      what: 'after a rotation: new first, old kept',
      previous: older.certPem,
      want: [current, older],
    },
    {
      what: 'expired certificates dropped',
      previous: `${older.certPem}${expired.certPem}`,
      want: [current, older],
    },
    {
      what: 'at most two older ones',
      previous: [ca(365), ca(365), ca(365)].map((c) => c.certPem).join(''),
      count: 3,
    },
  ])('$what', ({ previous, want, count }) => {
    const got = bundleCertificates(nextBundle(current.certPem, previous, now));
    if (want !== undefined) expect(got).toEqual(want.map((c) => c.certPem));
    if (count !== undefined) expect(got).toHaveLength(count);
  });
});

describe('needsRenewal', () => {
  const leaf = (validDays: number, issuer = current, at = now) =>
    issueCertificate({
      commonName: 'l',
      usage: 'server',
      validForMs: validDays * DAY,
      issuer,
      now: at,
    });
  it.each([
    { what: 'missing', pair: undefined, want: true },
    { what: 'fresh from the current signer', pair: leaf(90), want: false },
    {
      what: 'a fifth of its life left',
      pair: leaf(90, current, new Date(now.getTime() - 73 * DAY)),
      want: true,
    },
    { what: 'signed by another CA', pair: leaf(90, older), want: true },
    {
      what: 'key of another certificate',
      pair: { ...leaf(90), keyPem: leaf(90).keyPem },
      want: true,
    },
    { what: 'not a certificate', pair: { keyPem: leaf(90).keyPem, certPem: 'junk' }, want: true },
  ])('$what → $want', ({ pair, want }) => {
    expect(needsRenewal(pair, { now, renewBeforeMs: 18 * DAY, signer: current })).toBe(want);
  });
});

describe('issuedUnder', () => {
  const lifetime = { lifetimeMs: 90 * DAY, renewBeforeMs: 18 * DAY };
  const pair = issueCertificate({
    commonName: 'l',
    usage: 'server',
    validForMs: 90 * DAY,
    issuer: current,
    now,
  });
  it.each([
    { what: 'the same annotation', annotation: 'A', want: true },
    { what: 'another annotation', annotation: 'B', want: false },
    { what: 'no annotation, validity of the wanted lifetime', annotation: undefined, want: true },
  ])('$what → $want', ({ annotation, want }) => {
    expect(issuedUnder(annotation, 'A', pair, lifetime)).toBe(want);
  });
  it('no annotation and another validity: reissue', () => {
    expect(
      issuedUnder(undefined, 'A', pair, { lifetimeMs: 24 * 3_600_000, renewBeforeMs: 1 }),
    ).toBe(false);
  });
});

describe('serviceDnsNames', () => {
  it('lists the names a pod may use for a Service', () => {
    expect(serviceDnsNames('cdi-api', 'cdi')).toEqual([
      'cdi-api',
      'cdi-api.cdi',
      'cdi-api.cdi.svc',
      'cdi-api.cdi.svc.cluster.local',
    ]);
  });
});
