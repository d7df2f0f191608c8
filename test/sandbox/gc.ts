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
import { clone, type KObject } from './object.js';
import type { ResourceType } from './resources.js';
import { Types } from './cluster.js';

interface Entry {
  readonly type: ResourceType;
  readonly obj: KObject;
}

/** Sweeps run at most this often while changes keep coming. */
const SWEEP_DELAY_MS = 20;

/** The collector. */
export class GarbageCollector {
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly api: ObjectApi,
    private readonly log: Logger,
  ) {}

  /** Starts sweeping after changes. */
  start(): void {
    this.api.setGracePolicy((type, obj, requested) => this.#grace(type, obj, requested));
    this.#unsubscribe = this.api.store.subscribe(() => this.#schedule());
  }

  /** Stops. */
  stop(): void {
    this.#unsubscribe?.();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
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

  #schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        this.#sweep();
      } catch (err) {
        this.log.warn('gc sweep failed', {
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }, SWEEP_DELAY_MS);
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

  #drainNamespace(ns: Entry, entries: readonly Entry[]): void {
    const name = ns.obj.metadata.name ?? '';
    const inside = entries.filter((e) => e.type.namespaced && e.obj.metadata.namespace === name);
    for (const e of inside) this.#tryDelete(e, 'Background');
    if (inside.length === 0) {
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
