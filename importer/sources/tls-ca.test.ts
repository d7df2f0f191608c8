// SPDX-License-Identifier: Apache-2.0
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { rootCertificates } from 'node:tls';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTestTls, type TestTls } from '../../test/helpers/tls.js';
import { loadCaBundle, readCertDir } from './tls-ca.js';

let tls: TestTls;
let other: TestTls;
let dir: string;

beforeAll(async () => {
  [tls, other] = await Promise.all([createTestTls(), createTestTls({ caName: 'other-ca' })]);
  dir = await mkdtemp(path.join(tmpdir(), 'cdi-certdir-'));
});
afterAll(async () => {
  await Promise.all([tls.cleanup(), other.cleanup(), rm(dir, { recursive: true, force: true })]);
});

describe('readCertDir', () => {
  it('reads every file of a ConfigMap-style mount (symlinks through ..data), skipping non-PEM files', async () => {
    const cm = path.join(dir, 'cm');
    const data = path.join(cm, '..2026_11_21');
    await mkdir(data, { recursive: true });
    await writeFile(path.join(data, 'ca.crt'), tls.caPem);
    await writeFile(path.join(data, 'other.pem'), other.caPem + other.caPem);
    await writeFile(path.join(data, 'README'), 'not a certificate');
    await symlink('..2026_11_21', path.join(cm, '..data'));
    for (const name of ['ca.crt', 'other.pem', 'README'])
      await symlink(path.join('..data', name), path.join(cm, name));
    const certs = await readCertDir(cm);
    expect(certs).toHaveLength(3);
    expect(certs[0]).toBe(tls.caPem.trim());
  });

  it('fails with CDI_INVALID_CONFIG on a missing directory', async () => {
    await expect(readCertDir(path.join(dir, 'missing'))).rejects.toMatchObject({
      code: 'CDI_INVALID_CONFIG',
    });
  });
});

describe('loadCaBundle', () => {
  it('keeps the default roots when no directory is given', async () => {
    expect(await loadCaBundle([undefined, ''])).toBeUndefined();
  });
  it('adds the cert dir to the bundled roots', async () => {
    const bundle = await loadCaBundle([tls.caDir]);
    expect(bundle).toHaveLength(rootCertificates.length + 1);
    expect(bundle?.at(-1)).toBe(tls.caPem.trim());
  });
});
