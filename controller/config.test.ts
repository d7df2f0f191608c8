// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';
import { CdiError } from '../common/errors.js';
import {
  computeConfigStatus,
  effectiveConfig,
  filesystemOverheadFor,
  isValidPercent,
  isWaitForFirstConsumer,
  parseControllerSettings,
} from './config.js';

const classes = [
  { name: 'standard', isDefault: true, volumeBindingMode: 'Immediate' },
  { name: 'wffc', isDefault: false, volumeBindingMode: 'WaitForFirstConsumer' },
];

describe('computeConfigStatus', () => {
  it('defaults: 6% everywhere, CDI’s pod resources, no scratch class', () => {
    expect(computeConfigStatus(undefined, classes)).toEqual({
      importProxy: { HTTPProxy: '', HTTPSProxy: '', noProxy: '', trustedCAProxy: '' },
      scratchSpaceStorageClass: '',
      defaultPodResourceRequirements: {
        limits: { cpu: '750m', memory: '600M' },
        requests: { cpu: '100m', memory: '60M' },
      },
      filesystemOverhead: { global: '0.06', storageClass: { standard: '0.06', wffc: '0.06' } },
      preallocation: false,
    });
  });

  it('applies overrides and ignores invalid ones', () => {
    const status = computeConfigStatus(
      {
        filesystemOverhead: { global: '0.1', storageClass: { wffc: '0.5', standard: '2' } },
        scratchSpaceStorageClass: 'wffc',
        podResourceRequirements: { requests: { cpu: '1' } },
        uploadProxyURLOverride: 'https://up.example',
        preallocation: true,
      },
      classes,
    );
    expect(status.filesystemOverhead).toEqual({
      global: '0.1',
      storageClass: { standard: '0.1', wffc: '0.5' },
    });
    expect(status.scratchSpaceStorageClass).toBe('wffc');
    expect(status.defaultPodResourceRequirements?.requests).toEqual({ cpu: '1', memory: '60M' });
    expect(status.uploadProxyURL).toBe('https://up.example');
    expect(status.preallocation).toBe(true);
  });

  it('drops a scratch class that does not exist', () => {
    expect(
      computeConfigStatus({ scratchSpaceStorageClass: 'nope' }, classes).scratchSpaceStorageClass,
    ).toBe('');
  });
});

describe('lookups', () => {
  const config = effectiveConfig(
    { filesystemOverhead: { global: '0.2', storageClass: { wffc: '0.3' } } },
    classes,
  );
  it.each([
    { what: 'named class', sc: 'wffc', overhead: 0.3, wffc: true },
    { what: 'default class when unnamed', sc: undefined, overhead: 0.2, wffc: false },
    { what: 'unknown class gets global', sc: 'other', overhead: 0.2, wffc: false },
  ])('$what', ({ sc, overhead, wffc }) => {
    expect(filesystemOverheadFor(config, sc)).toBe(overhead);
    expect(isWaitForFirstConsumer(config, sc)).toBe(wffc);
  });

  it.each([
    { text: '0', ok: true },
    { text: '0.055', ok: true },
    { text: '1', ok: true },
    { text: '0.0555', ok: false },
    { text: '1.5', ok: false },
    { text: '-0.1', ok: false },
  ])('isValidPercent($text)', ({ text, ok }) => {
    expect(isValidPercent(text)).toBe(ok);
  });
});

describe('parseControllerSettings', () => {
  it('reads the environment with defaults', () => {
    expect(parseControllerSettings({}, 'host-1')).toEqual({
      importerImage: 'cdi-ts/cdi:latest',
      uploadServerImage: 'cdi-ts/cdi:latest',
      namespace: 'default',
      pullPolicy: 'IfNotPresent',
      verbosity: 1,
      identity: 'host-1',
      metricsBindAddress: '0.0.0.0',
      metricsPort: 8080,
    });
    expect(
      parseControllerSettings({ METRICS_BIND_ADDRESS: '127.0.0.1', METRICS_PORT: '0' }, 'h'),
    ).toMatchObject({ metricsBindAddress: '127.0.0.1', metricsPort: 0 });
    expect(
      parseControllerSettings({ IMPORTER_IMAGE: 'i:1', POD_NAMESPACE: 'cdi', POD_NAME: 'p' }, 'h'),
    ).toMatchObject({
      importerImage: 'i:1',
      uploadServerImage: 'i:1',
      namespace: 'cdi',
      identity: 'p',
    });
    expect(parseControllerSettings({ UPLOADSERVER_IMAGE: 'u:2' }, 'h').uploadServerImage).toBe(
      'u:2',
    );
  });

  it('lists every bad variable', () => {
    let err: unknown;
    try {
      parseControllerSettings(
        { PULL_POLICY: 'Sometimes', VERBOSITY: 'loud', METRICS_PORT: '70000' },
        'h',
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CdiError);
    expect((err as CdiError).code).toBe('CDI_INVALID_CONFIG');
    expect((err as CdiError).message).toMatch(/PULL_POLICY.*VERBOSITY.*METRICS_PORT/);
  });
});
