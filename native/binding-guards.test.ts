// SPDX-License-Identifier: Apache-2.0
// The addon's own guards against a caller that hands it short or unexpected tables: the
// converters always pass whole, expected tables, so neither the fuzzers nor the image tables
// reach these checks (docs/fuzzing.md lists them as not covered); each must refuse with a
// CdiError-style code rather than read past the buffer.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { ErrorCodes } from '../common/errors.js';
import { neededRanges } from './block-map.js';
import { nativeBinding } from './load-binding.js';
import { makeImage, makeTempDir, sh } from './test-helpers/qemu-images.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let qcow2: Buffer;
let vdi: Buffer;

beforeAll(async () => {
  tmp = await makeTempDir('cdi-guards-');
  qcow2 = await readFile(
    await makeImage(tmp.dir, 'g', {
      what: 'guards',
      options: 'compat=1.1,cluster_size=4096',
      size: '4M',
      io: ['write -P 0xab 0 8k'],
    }),
  );
  const raw = join(tmp.dir, 'g.raw');
  await sh('qemu-img', ['create', '-q', '-f', 'raw', raw, '4M']);
  await sh('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 64k', raw]);
  await sh('qemu-img', ['convert', '-f', 'raw', '-O', 'vdi', raw, join(tmp.dir, 'g.vdi')]);
  vdi = await readFile(join(tmp.dir, 'g.vdi'));
});

afterAll(async () => {
  await tmp.cleanup();
});

function qcow2Map() {
  const map = new (nativeBinding().Qcow2Map)(qcow2.subarray(0, 4096 + 1024), qcow2.length);
  const info = map.info();
  return { map, info };
}

function vdiMap() {
  return new (nativeBinding().ImageMap)(
    'vdi',
    vdi.subarray(0, 64 * 1024),
    Buffer.alloc(0),
    vdi.length,
  );
}

it.each([
  {
    what: 'an L1 table shorter than l1_size entries',
    run: () => {
      const { map, info } = qcow2Map();
      map.parseL1(qcow2.subarray(info.l1Offset, info.l1Offset + info.l1Entries * 8 - 1));
    },
    message: /^l1 table truncated: \d+ of \d+ bytes$/,
  },
  {
    what: 'an L2 table shorter than a cluster',
    run: () => {
      const { map, info } = qcow2Map();
      const l2 = map.parseL1(qcow2.subarray(info.l1Offset, info.l1Offset + info.l1Entries * 8));
      const at = l2[0] ?? 0;
      map.mapL2(0, qcow2.subarray(at, at + 100));
    },
    message: /^l2 table of l1 entry 0 truncated: 100 bytes$/,
  },
  {
    what: 'a block table fed at an offset nothing asked for',
    run: () => void vdiMap().feed(12345, Buffer.alloc(4096)),
    message: /^internal: no table is expected at offset 12345$/,
  },
  {
    what: 'a block table shorter than asked',
    run: () => {
      const map = vdiMap();
      const [range] = neededRanges(map);
      const [offset = 0, length = 0] = range ?? [];
      map.feed(offset, vdi.subarray(offset, offset + length - 4));
    },
    message: /^table at offset \d+ truncated: \d+ of \d+ bytes$/,
  },
])('refuses $what', ({ run, message }) => {
  let caught: unknown;
  try {
    run();
  } catch (err) {
    caught = err;
  }
  expect(caught).toMatchObject({ code: ErrorCodes.ImageInvalid });
  expect((caught as Error).message).toMatch(message);
});
