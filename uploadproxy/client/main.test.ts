// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { parseUploadCommand } from './main.js';

describe('parseUploadCommand', () => {
  it('reads virtctl-style flags', () => {
    const cmd = parseUploadCommand(
      [
        '--namespace',
        'ns',
        '--dv',
        'vm-disk',
        '--file',
        'a.qcow2',
        '--size',
        '10Gi',
        '--storage-class',
        'fast',
      ].concat([
        '--access-mode',
        'RWX',
        '--block-volume',
        '--uploadproxy-url',
        'https://p',
        '--insecure',
        '--async',
      ]),
      {},
    );
    expect(cmd).toEqual({
      volume: {
        namespace: 'ns',
        name: 'vm-disk',
        kind: 'dv',
        size: '10Gi',
        storageClass: 'fast',
        accessMode: 'ReadWriteMany',
        blockVolume: true,
      },
      file: 'a.qcow2',
      proxyUrl: 'https://p',
      caFile: undefined,
      insecure: true,
      create: true,
      async: true,
      kubeconfig: undefined,
      waitMs: 300_000,
    });
  });

  it('a PVC, --no-create, KUBECONFIG from the environment', () => {
    const cmd = parseUploadCommand(['--pvc', 'p', '--image-path', 'x.img', '--no-create'], {
      KUBECONFIG: '/k',
    });
    expect(cmd).toMatchObject({
      volume: { kind: 'pvc', name: 'p', namespace: 'default' },
      create: false,
      kubeconfig: '/k',
    });
  });

  it.each([
    { what: 'neither --dv nor --pvc', argv: ['--file', 'f'], text: /exactly one of --dv or --pvc/ },
    {
      what: 'both --dv and --pvc',
      argv: ['--dv', 'a', '--pvc', 'b', '--file', 'f'],
      text: /exactly one/,
    },
    { what: 'no file', argv: ['--dv', 'a'], text: /--file is required/ },
    {
      what: 'a bad access mode',
      argv: ['--dv', 'a', '--file', 'f', '--access-mode', 'RW'],
      text: /--access-mode RW/,
    },
    {
      what: 'a bad wait',
      argv: ['--dv', 'a', '--file', 'f', '--wait-secs', '0'],
      text: /--wait-secs/,
    },
    {
      what: 'an unknown flag',
      argv: ['--dv', 'a', '--file', 'f', '--nope'],
      text: /unknown flag --nope/,
    },
  ])('refuses $what', ({ argv, text }) => {
    expect(() => parseUploadCommand(argv, {})).toThrow(text);
  });
});
