// SPDX-License-Identifier: Apache-2.0
import { describe, expect, it } from 'vitest';

import {
  cdiConfigSpecProblems,
  cdiSpecProblems,
  isValidPercent,
  storageProfileSpecProblems,
} from './config-validate.js';

describe('isValidPercent', () => {
  it.each([
    ['0', true],
    ['0.055', true],
    ['1', true],
    ['0.0555', false],
    ['1.0', false],
    ['.5', false],
    ['', false],
  ])('%s → %s', (text, want) => {
    expect(isValidPercent(text)).toBe(want);
  });
});

describe('cdiConfigSpecProblems', () => {
  it.each([
    { what: 'empty', spec: {}, want: [] },
    {
      what: 'CDI defaults',
      spec: {
        filesystemOverhead: { global: '0.06', storageClass: { local: '0.1' } },
        podResourceRequirements: {
          limits: { cpu: '750m', memory: '600M' },
          requests: { cpu: '100m', memory: '60Mi' },
        },
      },
      want: [],
    },
    {
      what: 'a class overhead over 1 and a bad quantity',
      spec: {
        filesystemOverhead: { storageClass: { local: '2' } },
        podResourceRequirements: { requests: { cpu: 'a lot' } },
      },
      want: [
        'spec.filesystemOverhead.storageClass.local: Invalid value: "2": should match \'^(0(?:\\.\\d{1,3})?|1)$\'',
        'spec.podResourceRequirements.requests.cpu: Invalid value: "a lot": quantities must match the regular expression \'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$\'',
      ],
    },
  ])('$what', ({ spec, want }) => {
    expect(cdiConfigSpecProblems(spec).map((p) => p.message)).toEqual(want);
  });
});

describe('storageProfileSpecProblems', () => {
  const set = (accessModes: string[] | undefined, volumeMode: string | undefined) => ({
    ...(accessModes === undefined ? {} : { accessModes }),
    ...(volumeMode === undefined ? {} : { volumeMode }),
  });
  it.each([
    { what: 'empty', spec: {}, want: [] },
    {
      what: 'valid sets and strategy',
      spec: {
        cloneStrategy: 'csi-clone',
        dataImportCronSourceFormat: 'snapshot',
        claimPropertySets: [set(['ReadWriteMany'], 'Block'), set(['ReadWriteOnce'], 'Filesystem')],
      },
      want: [],
    },
    {
      what: 'every problem of a set',
      spec: {
        claimPropertySets: [
          set(['ReadWriteOnce', 'Sometimes'], 'Raw'),
          set(undefined, undefined),
          set(
            ['ReadWriteOnce', 'ReadWriteOnce', 'ReadWriteOnce', 'ReadWriteOnce', 'ReadWriteOnce'],
            'Block',
          ),
        ],
        dataImportCronSourceFormat: 'qcow2',
      },
      want: [
        'spec.dataImportCronSourceFormat: Unsupported value: "qcow2": supported values: "pvc", "snapshot"',
        'spec.claimPropertySets[0].accessModes: Invalid value: "array": Illegal AccessMode',
        'spec.claimPropertySets[0].volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"',
        'spec.claimPropertySets[1].accessModes: Required value',
        'spec.claimPropertySets[1].volumeMode: Required value',
        'spec.claimPropertySets[2].accessModes: Too many: 5: must have at most 4 items',
      ],
    },
    {
      what: 'more than eight sets',
      spec: { claimPropertySets: Array.from({ length: 9 }, () => set(['ReadWriteOnce'], 'Block')) },
      want: ['spec.claimPropertySets: Too many: 9: must have at most 8 items'],
    },
  ])('$what', ({ spec, want }) => {
    expect(storageProfileSpecProblems(spec).map((p) => p.message)).toEqual(want);
  });
});

describe('cdiSpecProblems', () => {
  it.each([
    {
      what: 'CDI’s release resource',
      spec: {
        imagePullPolicy: 'IfNotPresent',
        uninstallStrategy: 'BlockUninstallIfWorkloadsExist',
        certConfig: {
          ca: { duration: '48h', renewBefore: '24h' },
          server: { duration: '24h', renewBefore: '12h' },
        },
        config: { featureGates: ['HonorWaitForFirstConsumer'] },
      },
      want: [],
    },
    {
      what: 'enums, the config and the certConfig',
      spec: {
        imagePullPolicy: 'Sometimes',
        cloneStrategyOverride: 'teleport',
        config: { filesystemOverhead: { global: '5' } },
        certConfig: { ca: { duration: '1h', renewBefore: '1h' } },
      },
      want: [
        [
          'spec.imagePullPolicy',
          'spec.imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"',
        ],
        [
          'spec.cloneStrategyOverride',
          'spec.cloneStrategyOverride: Unsupported value: "teleport": supported values: "copy", "snapshot", "csi-clone"',
        ],
        [
          'spec.config.filesystemOverhead.global',
          'spec.config.filesystemOverhead.global: Invalid value: "5": should match \'^(0(?:\\.\\d{1,3})?|1)$\'',
        ],
        [
          'spec.certConfig.ca.renewBefore',
          'spec.certConfig.ca.renewBefore (1h) must be shorter than duration (1h)',
        ],
      ],
    },
  ])('$what', ({ spec, want }) => {
    expect(cdiSpecProblems(spec).map((p) => [p.field, p.message])).toEqual(want);
  });
});
