// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { judgeTermination } from './termination.js';

describe('judgeTermination', () => {
  it.each<{
    what: string;
    exit: number;
    text: string | undefined;
    succeeded: boolean;
    terminal: boolean;
    scratch?: boolean;
    reason: string;
    message: string;
  }>([
    {
      what: 'success JSON',
      exit: 0,
      text: '{"scratchSpaceRequired":false,"preallocationApplied":false,"message":"Import Complete"}',
      succeeded: true,
      terminal: false,
      reason: 'Completed',
      message: 'Import Complete',
    },
    {
      what: 'scratch required',
      exit: 0,
      text: '{"scratchSpaceRequired":true,"message":"scratch"}',
      succeeded: false,
      terminal: false,
      scratch: true,
      reason: 'Scratch space required',
      message: 'scratch space required and none found',
    },
    {
      what: '404 retries',
      exit: 1,
      text: 'Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found\nmore',
      succeeded: false,
      terminal: false,
      reason: 'Error',
      message:
        'Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found',
    },
    {
      what: 'checksum mismatch is terminal',
      exit: 1,
      text: 'Unable to process data: checksum validation failed: checksum mismatch: expected sha256:a, calculated sha256:b',
      succeeded: false,
      terminal: true,
      reason: 'ChecksumError',
      message:
        'Unable to process data: checksum validation failed: checksum mismatch: expected sha256:a, calculated sha256:b',
    },
    {
      what: 'checksum mismatch reported with exit 0 (Go CDI) is terminal too',
      exit: 0,
      text: '{"message":"checksum validation failed: checksum mismatch: expected md5:a, calculated md5:b"}',
      succeeded: false,
      terminal: true,
      reason: 'ChecksumError',
      message: 'checksum validation failed: checksum mismatch: expected md5:a, calculated md5:b',
    },
    {
      what: 'image larger than the claim',
      exit: 1,
      text: 'Unable to process data: virtual image size 2147483648 is larger than the reported available storage 1048576. A larger PVC is required.',
      succeeded: false,
      terminal: true,
      reason: 'Error',
      message: 'DataVolume too small to contain image',
    },
    {
      what: 'our wording of the size error',
      exit: 1,
      text: 'image virtual size 20Gi exceeds available space 9.5Gi',
      succeeded: false,
      terminal: true,
      reason: 'Error',
      message: 'DataVolume too small to contain image',
    },
    {
      what: 'ENOSPC',
      exit: 1,
      text: 'writing /data/disk.img failed: no space left on device',
      succeeded: false,
      terminal: true,
      reason: 'Error',
      message: 'DataVolume too small to contain image',
    },
    {
      what: 'code in a JSON failure message wins',
      exit: 1,
      text: '{"code":"CDI_SIZE_VALIDATION","message":"too big"}',
      succeeded: false,
      terminal: true,
      reason: 'Error',
      message: 'DataVolume too small to contain image',
    },
    {
      what: 'empty failure message',
      exit: 137,
      text: undefined,
      succeeded: false,
      terminal: false,
      reason: 'Error',
      message: 'importer exited with code 137',
    },
    {
      what: 'killed: the log tail stands in, its last line named',
      exit: 137,
      text: '{"ts":"t","level":"info","msg":"source opened","component":"importer"}\n{"ts":"t","level":"info","msg":"converting"}',
      succeeded: false,
      terminal: false,
      reason: 'Error',
      message: 'importer exited with code 137; last log: converting',
    },
    {
      what: 'log tail with an error record: the error',
      exit: 1,
      text: '{"level":"info","msg":"source opened"}\n{"level":"error","msg":"no space left on device writing /data/disk.img"}',
      succeeded: false,
      terminal: true,
      reason: 'Error',
      message: 'DataVolume too small to contain image',
    },
    {
      what: 'success without message',
      exit: 0,
      text: '',
      succeeded: true,
      terminal: false,
      reason: 'Completed',
      message: 'Import Complete',
    },
  ])('$what', ({ exit, text, succeeded, terminal, scratch, reason, message }) => {
    const v = judgeTermination(exit, text);
    expect(v).toMatchObject({
      succeeded,
      terminal,
      scratchSpaceRequired: scratch ?? false,
      reason,
      message,
    });
  });

  it('reports labels and preallocation from the success message', () => {
    const v = judgeTermination(
      0,
      '{"preallocationApplied":true,"labels":{"instancetype.kubevirt.io/default-instancetype":"u1.small","n":1}}',
    );
    expect(v.preallocationApplied).toBe(true);
    expect(v.labels).toEqual({ 'instancetype.kubevirt.io/default-instancetype': 'u1.small' });
  });
});
