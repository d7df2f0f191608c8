// SPDX-License-Identifier: Apache-2.0
/**
 * The CDI resource's reconcile, decided purely (CDI's operator and `config-controller.go`):
 * - the first time it sees the resource it becomes the configuration authority
 *   (`cdi.kubevirt.io/configAuthority`), adopting an existing CDIConfig spec when the resource has
 *   no `spec.config`; from then on `spec.config` is copied into `CDIConfig.spec`, so
 *   `kubectl patch cdi cdi --type merge -p '{"spec":{"config":...}}'` configures the controller;
 * - with `uninstallStrategy: BlockUninstallIfWorkloadsExist`, the finalizer
 *   `operator.cdi.kubevirt.io` holds its deletion while DataVolumes exist (other strategies carry
 *   no finalizer);
 * - `status.phase` reads Deployed (Deleting once deleted) and the Available, Progressing and
 *   Degraded conditions follow the controller's health.
 */
import type { CdiConfig, CdiConfigSpec } from '../../common/api/datavolume.js';
import { UninstallStrategies, type Cdi, type CdiCondition, type CdiStatus } from './types.js';

/** Marks the CDI resource whose `spec.config` is authoritative. */
export const CONFIG_AUTHORITY_ANNOTATION = 'cdi.kubevirt.io/configAuthority';
/** The operator's finalizer on the CDI resource. */
export const CDI_FINALIZER = 'operator.cdi.kubevirt.io';

/** CDI's message when an uninstall is refused (`cdi-validate.go`). */
export function uninstallBlockedMessage(dataVolumes: number): string {
  return (
    `rejecting the uninstall request, since there are still ${dataVolumes} DataVolumes present. ` +
    'Either delete all DataVolumes or change the uninstall strategy before uninstalling CDI'
  );
}

/** What the reconcile sees. */
export interface CdiInput {
  readonly cdi: Cdi;
  /** The CDIConfig singleton, when it exists. */
  readonly config: CdiConfig | undefined;
  /** DataVolumes in the cluster. */
  readonly dataVolumes: number;
  /** Why the controller cannot work yet, or undefined when healthy. */
  readonly notReady: string | undefined;
  /** RFC 3339 time stamp for condition transitions. */
  readonly now: string;
}

/** What should change. */
export interface CdiDecision {
  /** JSON merge patch of the CDI resource's metadata and spec. */
  readonly patch?: Record<string, unknown>;
  /** The spec the CDIConfig must have (replaced whole, as CDI's operator does). */
  readonly configSpec?: CdiConfigSpec;
  /** The status the resource must show. */
  readonly status?: CdiStatus;
  /** Why a deletion waits (for an Event), when it does. */
  readonly blocked?: string;
}

function isDeleting(cdi: Cdi): boolean {
  return cdi.metadata.deletionTimestamp !== undefined && cdi.metadata.deletionTimestamp !== null;
}

function isEmptySpec(spec: CdiConfigSpec | undefined): boolean {
  return spec === undefined || Object.keys(spec).length === 0;
}

/** Key order-insensitive equality of JSON data. */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, x]) => [k, canonical(x)]),
    );
  }
  return v;
}

function condition(
  type: string,
  status: CdiCondition['status'],
  reason: string,
  message: string,
): CdiCondition {
  return { type, status, reason, message };
}

/** The conditions for the controller's health (CDI's `MarkCrHealthyMessage` and friends). */
function healthConditions(
  notReady: string | undefined,
  blocked: string | undefined,
): CdiCondition[] {
  if (blocked !== undefined) {
    return [
      condition('Available', 'True', 'DeployCompleted', 'Deployment Completed'),
      condition('Progressing', 'False', 'UninstallBlocked', blocked),
      condition('Degraded', 'True', 'UninstallBlocked', blocked),
    ];
  }
  if (notReady !== undefined) {
    return [
      condition('Available', 'False', 'DeployStarted', `Started Deployment: ${notReady}`),
      condition('Progressing', 'True', 'DeployStarted', `Started Deployment: ${notReady}`),
      condition('Degraded', 'False', 'DeployStarted', `Started Deployment: ${notReady}`),
    ];
  }
  return [
    condition('Available', 'True', 'DeployCompleted', 'Deployment Completed'),
    condition('Progressing', 'False', 'DeployCompleted', 'Deployment Completed'),
    condition('Degraded', 'False', 'DeployCompleted', 'Deployment Completed'),
  ];
}

/** Keeps each condition's transition time unless its status changed. */
function withTransitions(
  current: readonly CdiCondition[] | undefined,
  wanted: readonly CdiCondition[],
  now: string,
): CdiCondition[] {
  return wanted.map((c) => {
    const old = current?.find((o) => o.type === c.type);
    const since =
      old?.status === c.status && old.lastTransitionTime !== undefined
        ? old.lastTransitionTime
        : now;
    return { ...c, lastTransitionTime: since, lastHeartbeatTime: old?.lastHeartbeatTime ?? now };
  });
}

/** Compares conditions without their time stamps. */
function sameConditions(
  a: readonly CdiCondition[] | undefined,
  b: readonly CdiCondition[],
): boolean {
  const strip = (cs: readonly CdiCondition[] | undefined): unknown =>
    (cs ?? []).map(({ type, status, reason, message }) => ({ type, status, reason, message }));
  return sameJson(strip(a), strip(b));
}

/** Decides one reconcile of a CDI resource. */
export function decideCdi(input: CdiInput): CdiDecision {
  const { cdi, config } = input;
  const finalizers = cdi.metadata.finalizers ?? [];
  const hasFinalizer = finalizers.includes(CDI_FINALIZER);
  const deleting = isDeleting(cdi);
  const decision: { -readonly [K in keyof CdiDecision]: CdiDecision[K] } = {};

  if (deleting) {
    const blocks =
      cdi.spec?.uninstallStrategy === UninstallStrategies.BlockUninstallIfWorkloadsExist &&
      input.dataVolumes > 0;
    if (blocks) decision.blocked = uninstallBlockedMessage(input.dataVolumes);
    else if (hasFinalizer)
      decision.patch = {
        metadata: {
          finalizers: finalizers.filter((f) => f !== CDI_FINALIZER),
          resourceVersion: cdi.metadata.resourceVersion,
        },
      };
  } else {
    const authority = cdi.metadata.annotations?.[CONFIG_AUTHORITY_ANNOTATION] !== undefined;
    const metadata: Record<string, unknown> = {};
    const spec: Record<string, unknown> = {};
    // Only a blocking strategy needs the finalizer: without it, deleting the CRDs and the
    // controller together (`kubectl delete -k deploy/`) cannot leave the resource stuck.
    const blocking =
      cdi.spec?.uninstallStrategy === UninstallStrategies.BlockUninstallIfWorkloadsExist;
    if (blocking && !hasFinalizer) metadata['finalizers'] = [...finalizers, CDI_FINALIZER];
    if (!blocking && hasFinalizer)
      metadata['finalizers'] = finalizers.filter((f) => f !== CDI_FINALIZER);
    if (!authority) {
      metadata['annotations'] = { [CONFIG_AUTHORITY_ANNOTATION]: '' };
      // CDI `reconcileSetConfigAuthority`: settings made on the CDIConfig before are kept.
      if (cdi.spec?.config === undefined && !isEmptySpec(config?.spec))
        spec['config'] = config?.spec;
    } else if (config !== undefined && !sameJson(config.spec ?? {}, cdi.spec?.config ?? {})) {
      // CDI `setOperatorParams`: the CDIConfig spec is the resource's, whatever was edited there.
      decision.configSpec = cdi.spec?.config ?? {};
    }
    if (Object.keys(metadata).length > 0 || Object.keys(spec).length > 0) {
      decision.patch = {
        ...(Object.keys(metadata).length > 0
          ? { metadata: { ...metadata, resourceVersion: cdi.metadata.resourceVersion } }
          : {}),
        ...(Object.keys(spec).length > 0 ? { spec } : {}),
      };
    }
  }

  const phase = deleting ? 'Deleting' : 'Deployed';
  const wanted = healthConditions(input.notReady, decision.blocked);
  if (cdi.status?.phase !== phase || !sameConditions(cdi.status?.conditions, wanted)) {
    decision.status = {
      ...cdi.status,
      phase,
      conditions: withTransitions(cdi.status?.conditions, wanted, input.now),
    };
  }
  return decision;
}

/**
 * The active CDI resource (CDI `GetActiveCDI`): the only one not being deleted, else the only
 * one; undefined when there is none or more than one.
 */
export function activeCdi(all: readonly Cdi[]): Cdi | undefined {
  const live = all.filter((c) => !isDeleting(c));
  if (live.length === 1) return live[0];
  if (live.length === 0 && all.length === 1) return all[0];
  return undefined;
}
