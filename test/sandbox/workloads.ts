// SPDX-License-Identifier: Apache-2.0
/**
 * The Deployment and ReplicaSet controllers of kube-controller-manager, cut to what CDI's
 * Deployments use. A Deployment owns one ReplicaSet per pod template, named
 * `<deployment>-<pod-template-hash>` and labelled with that hash; a ReplicaSet keeps
 * `spec.replicas` pods of its template (`<replicaset>-<suffix>`), each owned by it. Old
 * ReplicaSets are scaled to zero once the new one is available (RollingUpdate) or at once
 * (Recreate). Status follows the pods: replicas, updated, ready and available counts and the
 * `Available`/`Progressing` conditions, so `kubectl rollout status` works. Deleting a Deployment
 * leaves its ReplicaSets and pods to the garbage collector, as on a cluster.
 *
 * Simplifications: minReadySeconds, maxSurge/maxUnavailable and progressDeadlineSeconds are not
 * enforced (a pod is available once ready; an update replaces all pods in one step).
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../common/logger.js';
import { Types } from './cluster.js';
import type { ObjectApi } from './object-api.js';
import { clone, getPath, isRecord, type KObject, type OwnerReference } from './object.js';
import type { ResourceType } from './resources.js';
import { SweepLoop } from './sweep-loop.js';

/** The label (and ReplicaSet name suffix) naming a pod template. */
export const POD_TEMPLATE_HASH = 'pod-template-hash';
/** The Deployment revision annotation `kubectl rollout history` reads. */
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';

/** Consonants and digits, as kube's SafeEncodeString uses, so hashes spell no words. */
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** A stable, label-safe hash of a pod template (10 characters). */
export function podTemplateHash(template: unknown): string {
  const digest = createHash('sha256').update(JSON.stringify(template)).digest();
  return [...digest.subarray(0, 10)]
    .map((b) => SAFE_ALPHABET[b % SAFE_ALPHABET.length] ?? 'b')
    .join('');
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function num(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : fallback;
}

function controllerOf(obj: KObject): OwnerReference | undefined {
  return (obj.metadata.ownerReferences ?? []).find((r) => r.controller === true);
}

function ownerRef(owner: KObject): OwnerReference {
  return {
    apiVersion: String(owner.apiVersion),
    kind: String(owner.kind),
    name: owner.metadata.name ?? '',
    uid: owner.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** True for a pod that counts towards a ReplicaSet (not terminating, not finished). */
export function isActivePod(pod: KObject): boolean {
  const phase = getPath(pod, ['status', 'phase']);
  return (
    pod.metadata.deletionTimestamp === undefined && phase !== 'Succeeded' && phase !== 'Failed'
  );
}

/** True for a pod whose Ready condition is True. */
export function isReadyPod(pod: KObject): boolean {
  const conds = getPath(pod, ['status', 'conditions']);
  return (
    isActivePod(pod) &&
    Array.isArray(conds) &&
    conds.some((c) => isRecord(c) && c['type'] === 'Ready' && c['status'] === 'True')
  );
}

/** What a ReplicaSet should do: pods to create and pods to delete, and its status. */
export interface ReplicaSetPlan {
  readonly create: number;
  readonly remove: readonly string[];
  readonly status: { replicas: number; readyReplicas: number; availableReplicas: number };
}

/** Decides a ReplicaSet's step from its spec and the pods it owns (pure). */
export function planReplicaSet(rs: KObject, owned: readonly KObject[]): ReplicaSetPlan {
  const want = num(getPath(rs, ['spec', 'replicas']), 1);
  const active = owned.filter(isActivePod);
  const ready = active.filter(isReadyPod).length;
  // Surplus: the unready, then the youngest go first (kube's ActivePods ordering, simplified).
  const byPreference = [...active].sort((a, b) => {
    const ra = isReadyPod(a) ? 1 : 0;
    const rb = isReadyPod(b) ? 1 : 0;
    if (ra !== rb) return ra - rb;
    return String(b.metadata.creationTimestamp).localeCompare(String(a.metadata.creationTimestamp));
  });
  const surplus = Math.max(0, active.length - want);
  return {
    create: Math.max(0, want - active.length),
    remove: byPreference.slice(0, surplus).map((p) => p.metadata.name ?? ''),
    status: { replicas: active.length, readyReplicas: ready, availableReplicas: ready },
  };
}

/** What a Deployment should do with its ReplicaSets, and its status. */
export interface DeploymentPlan {
  /** The ReplicaSet of the current template, to create when absent. */
  readonly newReplicaSet: KObject | undefined;
  /** Replica counts to set on existing ReplicaSets (by name). */
  readonly scale: ReadonlyMap<string, number>;
  readonly status: Record<string, unknown>;
  readonly revision: string;
}

function rsStatus(rs: KObject, field: string): number {
  return num(getPath(rs, ['status', field]), 0);
}

function condition(
  old: unknown,
  type: string,
  ok: boolean,
  reason: string,
  message: string,
): Record<string, unknown> {
  const prev = Array.isArray(old)
    ? old.filter(isRecord).find((c) => c['type'] === type)
    : undefined;
  const status = ok ? 'True' : 'False';
  const t = now();
  return {
    type,
    status,
    lastUpdateTime: prev?.['reason'] === reason ? (prev['lastUpdateTime'] ?? t) : t,
    lastTransitionTime: prev?.['status'] === status ? (prev['lastTransitionTime'] ?? t) : t,
    reason,
    message,
  };
}

/** Decides a Deployment's step from its spec and the ReplicaSets it owns (pure). */
export function planDeployment(d: KObject, owned: readonly KObject[]): DeploymentPlan {
  const name = d.metadata.name ?? '';
  const ns = d.metadata.namespace ?? '';
  const want = num(getPath(d, ['spec', 'replicas']), 1);
  const template = getPath(d, ['spec', 'template']);
  const hash = podTemplateHash(template);
  const current = owned.find((rs) => rs.metadata.labels?.[POD_TEMPLATE_HASH] === hash);
  const olds = owned.filter((rs) => rs !== current);
  const revisions = owned.map((rs) => Number(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? 0));
  const revision =
    current?.metadata.annotations?.[REVISION_ANNOTATION] ?? String(Math.max(0, ...revisions) + 1);
  let newReplicaSet: KObject | undefined;
  if (current === undefined) {
    const tpl = isRecord(template) ? clone(template) : {};
    const tplMeta = isRecord(tpl['metadata']) ? tpl['metadata'] : {};
    const labels = {
      ...(isRecord(tplMeta['labels']) ? (tplMeta['labels'] as Record<string, string>) : {}),
      [POD_TEMPLATE_HASH]: hash,
    };
    const selector = getPath(d, ['spec', 'selector', 'matchLabels']);
    newReplicaSet = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${name}-${hash}`,
        namespace: ns,
        labels,
        annotations: {
          [REVISION_ANNOTATION]: revision,
          'deployment.kubernetes.io/desired-replicas': String(want),
        },
        ownerReferences: [ownerRef(d)],
      },
      spec: {
        replicas: want,
        selector: {
          matchLabels: {
            ...(isRecord(selector) ? (selector as Record<string, string>) : {}),
            [POD_TEMPLATE_HASH]: hash,
          },
        },
        template: { ...tpl, metadata: { ...tplMeta, labels } },
      },
    };
  }
  const scale = new Map<string, number>();
  if (current !== undefined && num(getPath(current, ['spec', 'replicas']), 1) !== want)
    scale.set(current.metadata.name ?? '', want);
  const recreate = getPath(d, ['spec', 'strategy', 'type']) === 'Recreate';
  const newAvailable = current === undefined ? 0 : rsStatus(current, 'availableReplicas');
  // RollingUpdate: the old pods go once the new ones serve; Recreate: at once.
  if (recreate || newAvailable >= want) {
    for (const rs of olds)
      if (num(getPath(rs, ['spec', 'replicas']), 1) !== 0) scale.set(rs.metadata.name ?? '', 0);
  }
  const all = current === undefined ? olds : [...olds, current];
  const replicas = all.reduce((n, rs) => n + rsStatus(rs, 'replicas'), 0);
  const ready = all.reduce((n, rs) => n + rsStatus(rs, 'readyReplicas'), 0);
  const available = all.reduce((n, rs) => n + rsStatus(rs, 'availableReplicas'), 0);
  const updated = current === undefined ? 0 : rsStatus(current, 'replicas');
  const complete = updated === want && replicas === want && available === want;
  const rsName = `${name}-${hash}`;
  const oldConds = getPath(d, ['status', 'conditions']);
  const status: Record<string, unknown> = {
    observedGeneration: d.metadata.generation ?? 1,
    replicas,
    updatedReplicas: updated,
    readyReplicas: ready,
    availableReplicas: available,
    ...(want - available > 0 ? { unavailableReplicas: want - available } : {}),
    conditions: [
      available >= want
        ? condition(
            oldConds,
            'Available',
            true,
            'MinimumReplicasAvailable',
            'Deployment has minimum availability.',
          )
        : condition(
            oldConds,
            'Available',
            false,
            'MinimumReplicasUnavailable',
            'Deployment does not have minimum availability.',
          ),
      complete
        ? condition(
            oldConds,
            'Progressing',
            true,
            'NewReplicaSetAvailable',
            `ReplicaSet "${rsName}" has successfully progressed.`,
          )
        : condition(
            oldConds,
            'Progressing',
            true,
            'ReplicaSetUpdated',
            `ReplicaSet "${rsName}" is progressing.`,
          ),
    ],
  };
  return { newReplicaSet, scale, status, revision };
}

/** Runs both controllers against the API (the executor of the plans above). */
export class WorkloadControllers {
  readonly #deployments: ResourceType;
  readonly #replicaSets: ResourceType;
  readonly #pods: ResourceType;
  readonly #loop: SweepLoop;

  constructor(
    private readonly api: ObjectApi,
    private readonly log: Logger,
  ) {
    const d = api.types.get(Types.Deployments);
    const rs = api.types.get(Types.ReplicaSets);
    const pods = api.types.get(Types.Pods);
    if (d === undefined || rs === undefined || pods === undefined)
      throw new Error('workload types missing');
    this.#deployments = d;
    this.#replicaSets = rs;
    this.#pods = pods;
    this.#loop = new SweepLoop({
      sweep: () => {
        this.#syncReplicaSets();
        this.#syncDeployments();
      },
      delayMs: 10,
      log,
      // A conflict with a concurrent writer: another pass follows.
      failure: 'workload sync failed',
      level: 'debug',
      retry: true,
    });
  }

  /** Starts following Deployments, ReplicaSets and pods. */
  start(): void {
    const watched = new Set<string>([Types.Deployments, Types.ReplicaSets, Types.Pods]);
    this.#loop.follow(this.api.store, (e) => watched.has(e.typeKey));
    this.#loop.schedule();
  }

  /** Stops following. */
  stop(): void {
    this.#loop.stop();
  }

  #owned(type: ResourceType, owner: KObject): KObject[] {
    return this.api
      .list(type, owner.metadata.namespace ?? '')
      .items.filter((o) => controllerOf(o)?.uid === owner.metadata.uid);
  }

  #syncReplicaSets(): void {
    for (const rs of this.api.list(this.#replicaSets, undefined).items) {
      if (rs.metadata.deletionTimestamp !== undefined) continue;
      const ns = rs.metadata.namespace ?? '';
      const plan = planReplicaSet(rs, this.#owned(this.#pods, rs));
      const template = getPath(rs, ['spec', 'template']);
      const tpl = isRecord(template) ? template : {};
      const tplMeta = isRecord(tpl['metadata']) ? tpl['metadata'] : {};
      for (let i = 0; i < plan.create; i++) {
        this.api.create(this.#pods, ns, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            ...clone(tplMeta),
            generateName: `${rs.metadata.name ?? ''}-`,
            namespace: ns,
            ownerReferences: [ownerRef(rs)],
          },
          spec: clone(tpl['spec'] ?? {}),
        });
      }
      for (const name of plan.remove) this.api.delete(this.#pods, ns, name);
      const old = isRecord(rs['status']) ? rs['status'] : {};
      const status = {
        ...plan.status,
        fullyLabeledReplicas: plan.status.replicas,
        observedGeneration: rs.metadata.generation ?? 1,
      };
      if (Object.entries(status).some(([k, v]) => old[k] !== v)) {
        this.api.update(
          this.#replicaSets,
          ns,
          rs.metadata.name ?? '',
          { ...rs, status },
          {
            subresource: 'status',
          },
        );
      }
    }
  }

  #syncDeployments(): void {
    for (const d of this.api.list(this.#deployments, undefined).items) {
      if (d.metadata.deletionTimestamp !== undefined) continue;
      const ns = d.metadata.namespace ?? '';
      const name = d.metadata.name ?? '';
      const owned = this.#owned(this.#replicaSets, d);
      const plan = planDeployment(d, owned);
      if (plan.newReplicaSet !== undefined) {
        this.api.create(this.#replicaSets, ns, plan.newReplicaSet);
        this.log.debug('replicaset created', { deployment: `${ns}/${name}` });
      }
      for (const [rsName, replicas] of plan.scale) {
        const rs = this.api.get(this.#replicaSets, ns, rsName);
        const spec = isRecord(rs['spec']) ? rs['spec'] : {};
        this.api.update(this.#replicaSets, ns, rsName, { ...rs, spec: { ...spec, replicas } });
      }
      let current = d;
      if (d.metadata.annotations?.[REVISION_ANNOTATION] !== plan.revision) {
        current = this.api.update(this.#deployments, ns, name, {
          ...d,
          metadata: {
            ...d.metadata,
            annotations: { ...d.metadata.annotations, [REVISION_ANNOTATION]: plan.revision },
          },
        });
      }
      const old = isRecord(current['status']) ? current['status'] : {};
      if (JSON.stringify(stripTimes(old)) !== JSON.stringify(stripTimes(plan.status))) {
        this.api.update(
          this.#deployments,
          ns,
          name,
          { ...current, status: plan.status },
          {
            subresource: 'status',
          },
        );
      }
    }
  }
}

/** A status without condition timestamps, to compare what changed. */
function stripTimes(status: Record<string, unknown>): unknown {
  const conds = status['conditions'];
  return {
    ...status,
    conditions: Array.isArray(conds)
      ? conds.filter(isRecord).map(({ lastUpdateTime: _u, lastTransitionTime: _t, ...c }) => c)
      : conds,
  };
}
