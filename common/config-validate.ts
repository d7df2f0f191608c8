// SPDX-License-Identifier: Apache-2.0
/**
 * What CDI refuses in a CDIConfig, a StorageProfile and the CDI resource: the rules of CDI's
 * CRD schemas (`Percent` pattern, enums, `MaxItems`, the "Illegal AccessMode" rule), worded as
 * the Kubernetes API server words schema failures, plus a sane `certConfig` (a `renewBefore`
 * shorter than its `duration`). `cdi apiserver`'s validating webhook refuses with these; they
 * hold on clusters whose API server does not enforce CRD schemas fully. Pure: spec in,
 * problems out.
 */
import type { CdiConfigSpec, StorageProfileSpec } from './api/datavolume.js';
import { certConfigProblems, type CdiCertConfig } from './cert-config.js';

/** One problem and the field it concerns (a cause of the admission answer). */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

/** CDI's `Percent` (`^(0(?:\.\d{1,3})?|1)$`): a filesystem overhead between 0 and 1. */
export const PERCENT_PATTERN = /^(0(?:\.\d{1,3})?|1)$/;

/** True for CDI's Percent syntax. */
export function isValidPercent(text: string): boolean {
  return PERCENT_PATTERN.test(text);
}

/** The enums of CDI's schemas, one table. */
export const SCHEMA_ENUMS = {
  cloneStrategy: ['copy', 'snapshot', 'csi-clone'],
  dataImportCronSourceFormat: ['pvc', 'snapshot'],
  volumeMode: ['Block', 'Filesystem'],
  imagePullPolicy: ['Always', 'IfNotPresent', 'Never'],
  uninstallStrategy: ['RemoveWorkloads', 'BlockUninstallIfWorkloadsExist'],
} as const;

const ACCESS_MODES: readonly string[] = [
  'ReadWriteOnce',
  'ReadOnlyMany',
  'ReadWriteMany',
  'ReadWriteOncePod',
];
const MAX_CLAIM_PROPERTY_SETS = 8;
/** Kubernetes' quantity syntax (`resource.Quantity`): `750m`, `1Gi`, `0.5`, `1e3`. */
const QUANTITY = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$/;
const MAX_ACCESS_MODES = 4;

function unsupported(field: string, value: unknown, allowed: readonly string[]): FieldProblem {
  return {
    field,
    message: `${field}: Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.map((a) => JSON.stringify(a)).join(', ')}`,
  };
}

function enumProblem(
  field: string,
  value: unknown,
  allowed: readonly string[],
): FieldProblem | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' && allowed.includes(value)
    ? undefined
    : unsupported(field, value, allowed);
}

function percentProblem(field: string, value: unknown): FieldProblem | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string' && isValidPercent(value)) return undefined;
  return {
    field,
    message: `${field}: Invalid value: ${JSON.stringify(value)}: should match '${PERCENT_PATTERN.source}'`,
  };
}

function quantityProblems(field: string, values: unknown): FieldProblem[] {
  if (typeof values !== 'object' || values === null) return [];
  const out: FieldProblem[] = [];
  for (const [name, v] of Object.entries(values as Record<string, unknown>)) {
    if (!QUANTITY.test(String(v))) {
      out.push({
        field: `${field}.${name}`,
        message: `${field}.${name}: Invalid value: ${JSON.stringify(v)}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`,
      });
    }
  }
  return out;
}

/** Problems of a CDIConfig spec (`prefix` names it: `spec`, or `spec.config` in the CDI resource). */
export function cdiConfigSpecProblems(
  spec: CdiConfigSpec | undefined,
  prefix = 'spec',
): FieldProblem[] {
  if (spec === undefined || spec === null) return [];
  const out: FieldProblem[] = [];
  const fo = spec.filesystemOverhead;
  const g = percentProblem(`${prefix}.filesystemOverhead.global`, fo?.global);
  if (g !== undefined) out.push(g);
  for (const [sc, v] of Object.entries(fo?.storageClass ?? {})) {
    const p = percentProblem(`${prefix}.filesystemOverhead.storageClass.${sc}`, v);
    if (p !== undefined) out.push(p);
  }
  const res = spec.podResourceRequirements;
  out.push(...quantityProblems(`${prefix}.podResourceRequirements.limits`, res?.limits));
  out.push(...quantityProblems(`${prefix}.podResourceRequirements.requests`, res?.requests));
  return out;
}

/** Problems of a StorageProfile spec. */
export function storageProfileSpecProblems(spec: StorageProfileSpec | undefined): FieldProblem[] {
  if (spec === undefined || spec === null) return [];
  const out: FieldProblem[] = [];
  const clone = enumProblem('spec.cloneStrategy', spec.cloneStrategy, SCHEMA_ENUMS.cloneStrategy);
  if (clone !== undefined) out.push(clone);
  const format = enumProblem(
    'spec.dataImportCronSourceFormat',
    spec.dataImportCronSourceFormat,
    SCHEMA_ENUMS.dataImportCronSourceFormat,
  );
  if (format !== undefined) out.push(format);
  const sets = spec.claimPropertySets ?? [];
  if (sets.length > MAX_CLAIM_PROPERTY_SETS) {
    out.push({
      field: 'spec.claimPropertySets',
      message: `spec.claimPropertySets: Too many: ${sets.length}: must have at most ${MAX_CLAIM_PROPERTY_SETS} items`,
    });
  }
  sets.forEach((set, i) => {
    const at = `spec.claimPropertySets[${i}]`;
    const modes = set.accessModes;
    if (modes === undefined || modes === null) {
      out.push({ field: `${at}.accessModes`, message: `${at}.accessModes: Required value` });
    } else if (modes.length > MAX_ACCESS_MODES) {
      out.push({
        field: `${at}.accessModes`,
        message: `${at}.accessModes: Too many: ${modes.length}: must have at most ${MAX_ACCESS_MODES} items`,
      });
    } else if (!modes.every((m) => ACCESS_MODES.includes(m))) {
      // CDI's CEL rule and message.
      out.push({
        field: `${at}.accessModes`,
        message: `${at}.accessModes: Invalid value: "array": Illegal AccessMode`,
      });
    }
    if (set.volumeMode === undefined || set.volumeMode === null) {
      out.push({ field: `${at}.volumeMode`, message: `${at}.volumeMode: Required value` });
    } else {
      const vm = enumProblem(`${at}.volumeMode`, set.volumeMode, SCHEMA_ENUMS.volumeMode);
      if (vm !== undefined) out.push(vm);
    }
  });
  return out;
}

/** The CDI resource's spec fields validated here. */
export interface CdiSpecLike {
  config?: CdiConfigSpec;
  imagePullPolicy?: string;
  uninstallStrategy?: string;
  cloneStrategyOverride?: string;
  certConfig?: CdiCertConfig;
}

/** Problems of the CDI resource's spec. */
export function cdiSpecProblems(spec: CdiSpecLike | undefined): FieldProblem[] {
  if (spec === undefined || spec === null) return [];
  const out: FieldProblem[] = [];
  for (const [field, allowed] of [
    ['imagePullPolicy', SCHEMA_ENUMS.imagePullPolicy],
    ['uninstallStrategy', SCHEMA_ENUMS.uninstallStrategy],
    ['cloneStrategyOverride', SCHEMA_ENUMS.cloneStrategy],
  ] as const) {
    const p = enumProblem(`spec.${field}`, spec[field], allowed);
    if (p !== undefined) out.push(p);
  }
  out.push(...cdiConfigSpecProblems(spec.config, 'spec.config'));
  for (const message of certConfigProblems(spec.certConfig)) {
    out.push({ field: message.slice(0, message.search(/[ :(]/)), message });
  }
  return out;
}
