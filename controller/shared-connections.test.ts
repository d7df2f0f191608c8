// SPDX-License-Identifier: Apache-2.0
import type { AgentOptions } from 'node:https';
import { describe, expect, it } from 'vitest';
import { sameTls } from './shared-connections.js';

const ca = Buffer.from('ca');
const cert = Buffer.from('cert');

describe('sameTls', () => {
  it.each<{ what: string; a: AgentOptions; b: AgentOptions; same: boolean }>([
    { what: 'nothing set', a: {}, b: {}, same: true },
    {
      what: 'equal buffers in different objects',
      a: { ca, cert },
      b: { ca: Buffer.from('ca'), cert: Buffer.from('cert') },
      same: true,
    },
    { what: 'a rotated client certificate', a: { ca, cert }, b: { ca, cert: ca }, same: false },
    { what: 'a CA bundle as a list', a: { ca: [ca, cert] }, b: { ca: [ca, cert] }, same: true },
    { what: 'a CA bundle that lost one', a: { ca: [ca, cert] }, b: { ca: [ca] }, same: false },
    { what: 'another server name', a: { servername: 'a' }, b: { servername: 'b' }, same: false },
    {
      what: 'verification turned off',
      a: { rejectUnauthorized: true },
      b: { rejectUnauthorized: false },
      same: false,
    },
  ])('$what', ({ a, b, same }) => {
    expect(sameTls(a, b)).toBe(same);
  });
});
