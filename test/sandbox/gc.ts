// SPDX-License-Identifier: Apache-2.0
/**
 * The garbage collector and the namespace controller. After every batch of changes it sweeps:
 * dependents of deleted owners are deleted (background), owners deleted in the foreground wait
 * for their dependents before their `foregroundDeletion` finalizer is removed, orphaning strips
 * owner references, and a terminating namespace is emptied before it goes.
 */
import type { Logger } from '../../common/logger.js';
import { ApiStatusError } from './api-errors.js';
import { Finalizers, type ObjectApi } from './object-api.js';
import { clone, getPath, type KObject } from './object.js';
import { typeKey, type ResourceType } from './resources.js';
import { CRD_CLEANUP_FINALIZER, Types } from './cluster.js';
import { SweepLoop } from './sweep-loop.js';

interface Entry {
  readonly type: ResourceType;
  readonly obj: KObject;
}

/** Sweeps run at most this often while changes keep coming. */
const SWEEP_DELAY_MS = 20;

/**
 * How long a terminating namespace, or a deleted CRD, is left before its contents are removed:
 * the namespace controller and the CRD finalizer work from queues, so a client deleting the
 * contents itself (`kubectl delete -k` sends the Namespace and CRDs first) still finds them.
 */
export const TERMINATION_DRAIN_DELAY_MS = 1000;

/** The collector. */
export class GarbageCollector {
  readonly #loop: SweepLoop;
  /** When each terminating namespace or CRD (by uid) was first seen deleting. */
  readonly #terminating = new Map<string, number>();
  readonly #later = new Set<NodeJS.Timeout>();

  constructor(
    private readonly api: ObjectApi,
    private readonly log: Logger,
  ) {
    this.#loop = new SweepLoop({
      sweep: () => this.#sweep(),
      delayMs: SWEEP_DELAY_MS,
      log,
      failure: 'gc sweep failed',
      level: 'warn',
      retry: false,
    });
  }

  /** Starts sweeping after changes. */
  start(): void {
    this.api.setGracePolicy((type, obj, requested) => this.#grace(type, obj, requested));
    this.#loop.follow(this.api.store, () => true);
  }

  /** Stops. */
  stop(): void {
    this.#loop.stop();
    for (const t of this.#later) clearTimeout(t);
    this.#later.clear();
  }

  /** True once `e` has been terminating for the drain delay; else a sweep is due then. */
  #drainDue(e: Entry): boolean {
    const uid = e.obj.metadata.uid ?? '';
    const since = this.#terminating.get(uid) ?? Date.now();
    this.#terminating.set(uid, since);
    const left = since + TERMINATION_DRAIN_DELAY_MS - Date.now();
    if (left <= 0) return true;
    const t = setTimeout(() => {
      this.#later.delete(t);
      this.#loop.schedule();
    }, left);
    this.#later.add(t);
    return false;
  }

  /** Namespaces terminate gracefully (emptied first); pods are the kubelet's (see kubelet.ts). */
  #grace(type: ResourceType, obj: KObject, requested: number | undefined): number {
    if (type.group === '' && type.plural === 'namespaces') return 1;
    if (type.group === '' && type.plural === 'pods') {
      const spec = obj['spec'] as
        { nodeName?: string; terminationGracePeriodSeconds?: number } | undefined;
      const phase = (obj['status'] as { phase?: string } | undefined)?.phase;
      if (spec?.nodeName === undefined || phase === 'Succeeded' || phase === 'Failed') return 0;
      return Math.max(0, requested ?? spec.terminationGracePeriodSeconds ?? 30) === 0
        ? 0
        : Math.max(1, requested ?? spec.terminationGracePeriodSeconds ?? 30);
    }
    return 0;
  }

  #entries(): Entry[] {
    const out: Entry[] = [];
    for (const [key, obj] of this.api.store.entries()) {
      const type = this.api.types.get(key);
      if (type !== undefined) out.push({ type, obj });
    }
    return out;
  }

  #tryDelete(e: Entry, policy: 'Background' | 'Foreground'): void {
    if (e.obj.metadata.deletionTimestamp !== undefined) return;
    try {
      this.api.delete(e.type, e.obj.metadata.namespace ?? '', e.obj.metadata.name ?? '', {
        propagationPolicy: policy,
      });
    } catch (err) {
      if (!(err instanceof ApiStatusError && err.statusCode === 404)) throw err;
    }
  }

  #update(e: Entry, change: (o: KObject) => void, subresource?: 'status'): void {
    const current = this.api.find(
      e.type,
      e.obj.metadata.namespace ?? '',
      e.obj.metadata.name ?? '',
    );
    if (current === undefined) return;
    const next = clone(current);
    change(next);
    this.api.update(
      e.type,
      next.metadata.namespace ?? '',
      next.metadata.name ?? '',
      next,
      subresource === undefined ? {} : { subresource },
    );
  }

  #sweep(): void {
    const entries = this.#entries();
    const byUid = new Map(entries.map((e) => [e.obj.metadata.uid ?? '', e]));
    const dependents = new Map<string, Entry[]>();
    for (const e of entries) {
      for (const ref of e.obj.metadata.ownerReferences ?? []) {
        dependents.set(ref.uid, [...(dependents.get(ref.uid) ?? []), e]);
      }
    }
    for (const e of entries) {
      const deleting = e.obj.metadata.deletionTimestamp !== undefined;
      const finalizers = e.obj.metadata.finalizers ?? [];
      const deps = dependents.get(e.obj.metadata.uid ?? '') ?? [];
      if (deleting && finalizers.includes(Finalizers.Orphan)) {
        for (const d of deps) {
          this.#update(d, (o) => {
            o.metadata.ownerReferences = (o.metadata.ownerReferences ?? []).filter(
              (r) => r.uid !== e.obj.metadata.uid,
            );
          });
        }
        this.#update(e, (o) => {
          o.metadata.finalizers = (o.metadata.finalizers ?? []).filter(
            (f) => f !== Finalizers.Orphan,
          );
        });
      } else if (deleting && finalizers.includes(Finalizers.Foreground)) {
        for (const d of deps) this.#tryDelete(d, 'Foreground');
        if (deps.length === 0) {
          this.#update(e, (o) => {
            o.metadata.finalizers = (o.metadata.finalizers ?? []).filter(
              (f) => f !== Finalizers.Foreground,
            );
          });
        }
      }
      if (deleting && e.type.group === '' && e.type.plural === 'namespaces')
        this.#drainNamespace(e, entries);
      if (deleting && finalizers.includes(CRD_CLEANUP_FINALIZER)) this.#drainCrd(e);
      const refs = e.obj.metadata.ownerReferences ?? [];
      if (refs.length > 0 && !deleting) {
        const live = refs.filter((r) => byUid.has(r.uid));
        if (live.length === 0) {
          this.log.debug('deleting orphaned dependent', {
            kind: e.type.kind,
            name: e.obj.metadata.name,
          });
          this.#tryDelete(e, 'Background');
        } else if (live.length < refs.length) {
          this.#update(e, (o) => {
            o.metadata.ownerReferences = live;
          });
        }
      }
    }
  }

  /** Deletes a deleted CRD's objects, then lets the CRD go (its cleanup finalizer). */
  #drainCrd(crd: Entry): void {
    if (!this.#drainDue(crd)) return;
    const group = getPath(crd.obj, ['spec', 'group']);
    const plural = getPath(crd.obj, ['spec', 'names', 'plural']);
    const type =
      typeof group === 'string' && typeof plural === 'string'
        ? this.api.types.get(typeKey(group, plural))
        : undefined;
    const items = type === undefined ? [] : this.api.list(type, undefined).items;
    for (const obj of items) this.#tryDelete({ type: type ?? crd.type, obj }, 'Background');
    if (items.length === 0) {
      this.#terminating.delete(crd.obj.metadata.uid ?? '');
      this.#update(crd, (o) => {
        o.metadata.finalizers = (o.metadata.finalizers ?? []).filter(
          (f) => f !== CRD_CLEANUP_FINALIZER,
        );
      });
    }
  }

  #drainNamespace(ns: Entry, entries: readonly Entry[]): void {
    const name = ns.obj.metadata.name ?? '';
    const inside = entries.filter((e) => e.type.namespaced && e.obj.metadata.namespace === name);
    const due = inside.length === 0 || this.#drainDue(ns);
    if (due) for (const e of inside) this.#tryDelete(e, 'Background');
    if (inside.length === 0) {
      this.#terminating.delete(ns.obj.metadata.uid ?? '');
      const type = this.api.types.get(Types.Namespaces);
      if (type !== undefined) this.api.finishDeletion(type, '', name);
    } else if ((ns.obj['status'] as { phase?: string } | undefined)?.phase !== 'Terminating') {
      this.#update(
        ns,
        (o) => {
          o['status'] = { phase: 'Terminating' };
        },
        'status',
      );
    }
  }
}
