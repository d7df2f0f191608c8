// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../common/cli/args.js';
import { parseUploadCommand } from './main.js';

describe('parseUploadCommand', () => {
  it('reads our flags', () => {
    const cmd = parseUploadCommand(
      [
        ...['--namespace', 'ns', '--dv', 'vm-disk', '--file', 'a.qcow2', '--size', '10Gi'],
        ...['--storage-class', 'fast', '--access-mode', 'RWX', '--block-volume'],
        ...['--uploadproxy-url', 'https://p', '--insecure', '--async'],
      ],
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
        volumeMode: 'Block',
        forceBind: false,
      },
      file: 'a.qcow2',
      proxyUrl: 'https://p',
      caFile: undefined,
      insecure: true,
      create: true,
      async: true,
      checksum: undefined,
      kubeconfig: undefined,
      waitMs: 300_000,
    });
  });

  it.each([
    {
      what: "virtctl's dv NAME with its flags",
      argv: [
        ...['dv', 'disk', '--size', '10Gi', '--image-path', 'd.img', '-n', 'vms'],
        ...['--uploadproxy-url=https://p', '--insecure', '--no-create', '--force-bind'],
        ...['--access-mode', 'ReadWriteOnce', '--volume-mode', 'filesystem'],
        ...['--storage-class', 'sc', '--wait-secs', '60'],
      ],
      want: {
        volume: {
          kind: 'dv',
          name: 'disk',
          namespace: 'vms',
          size: '10Gi',
          accessMode: 'ReadWriteOnce',
          volumeMode: 'Filesystem',
          storageClass: 'sc',
          forceBind: true,
        },
        file: 'd.img',
        proxyUrl: 'https://p',
        insecure: true,
        create: false,
        waitMs: 60_000,
      },
    },
    {
      what: "virtctl's pvc NAME with --archive-path",
      argv: ['pvc', 'data', '--archive-path', 'a.tar', '--volume-mode', 'Block'],
      want: {
        volume: { kind: 'pvc', name: 'data', contentType: 'archive', volumeMode: 'Block' },
        file: 'a.tar',
      },
    },
    {
      what: '-n and KUBECONFIG from the environment',
      argv: ['--pvc', 'p', '--image-path', 'x.img', '-n', 'foo'],
      env: { KUBECONFIG: '/k' },
      want: { volume: { kind: 'pvc', name: 'p', namespace: 'foo' }, kubeconfig: '/k' },
    },
    {
      what: 'the default namespace',
      argv: ['--pvc', 'p', '--image-path', 'x.img'],
      want: { volume: { namespace: 'default' } },
    },
  ])('$what', ({ argv, env, want }) => {
    expect(parseUploadCommand(argv, env ?? {})).toMatchObject(want);
  });

  it.each([
    { what: 'no volume', argv: ['--file', 'f'], text: /name the volume/ },
    {
      what: 'both --dv and --pvc',
      argv: ['--dv', 'a', '--pvc', 'b', '--file', 'f'],
      text: /one of them/,
    },
    { what: 'dv NAME and --dv', argv: ['dv', 'a', '--dv', 'b', '--file', 'f'], text: /twice/ },
    {
      what: 'a kind virtctl lacks',
      argv: ['vm', 'a', '--file', 'f'],
      text: /unexpected argument "vm"/,
    },
    { what: 'dv without NAME', argv: ['dv', '--file', 'f'], text: /missing NAME after dv/ },
    {
      what: 'a stray argument',
      argv: ['dv', 'a', 'b', '--file', 'f'],
      text: /unexpected argument "b"/,
    },
    { what: 'no file', argv: ['--dv', 'a'], text: /--image-path .* is required/ },
    {
      what: 'an image and an archive',
      argv: ['dv', 'a', '--image-path', 'f', '--archive-path', 'g'],
      text: /exclusive/,
    },
    {
      what: 'a bad access mode',
      argv: ['--dv', 'a', '--file', 'f', '--access-mode', 'RW'],
      text: /--access-mode RW/,
    },
    {
      what: 'a bad volume mode',
      argv: ['--dv', 'a', '--file', 'f', '--volume-mode', 'raw'],
      text: /--volume-mode raw/,
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
  ])('refuses $what as a usage error', ({ argv, text }) => {
    let caught: unknown;
    try {
      parseUploadCommand(argv, {});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect(String(caught)).toMatch(text);
  });
});
