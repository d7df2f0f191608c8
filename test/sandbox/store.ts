// SPDX-License-Identifier: Apache-2.0
/**
 * In-memory object store with one cluster-wide resourceVersion counter and a bounded history of
 * changes, so that a watch can resume from any resourceVersion still in the window (older ones
 * get 410 Gone, as etcd compaction causes in a real cluster).
 */
import { clone, type KObject } from './object.js';

/** Kinds of change a watch reports. */
export const WatchTypes = { Added: 'ADDED', Modified: 'MODIFIED', Deleted: 'DELETED' } as const;
/** One of {@link WatchTypes}. */
export type WatchType = (typeof WatchTypes)[keyof typeof WatchTypes];

/** One recorded change. */
export interface StoreEvent {
  readonly type: WatchType;
  /** `group/plural` of the object. */
  readonly typeKey: string;
  readonly rv: number;
  /** The object after the change (for DELETED: its last state, with the deletion's rv). */
  readonly object: KObject;
  /** The object before the change (MODIFIED, DELETED). */
  readonly previous?: KObject;
}

/** Listener of store changes; called synchronously after the change is applied. */
export type StoreListener = (event: StoreEvent) => void;

const HISTORY_LIMIT = 50_000;

/** The store. Objects handed out are copies; callers never mutate stored state. */
export class ObjectStore {
  #rv = 1;
  readonly #objects = new Map<string, Map<string, KObject>>();
  readonly #history: StoreEvent[] = [];
  readonly #listeners = new Set<StoreListener>();

  /** The latest resourceVersion. */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** The lowest resourceVersion a watch may resume from. */
  get oldestResumable(): number {
    const first = this.#history[0];
    return first === undefined ? this.#rv : first.rv - 1;
  }

  /** A copy of one object. */
  get(typeKey: string, namespace: string, name: string): KObject | undefined {
    const obj = this.#objects.get(typeKey)?.get(`${namespace}/${name}`);
    return obj === undefined ? undefined : clone(obj);
  }

  /** Copies of all objects of a type, optionally in one namespace, sorted by namespace/name. */
  list(typeKey: string, namespace?: string): KObject[] {
    const bucket = this.#objects.get(typeKey);
    if (bucket === undefined) return [];
    const out: KObject[] = [];
    for (const [key, obj] of [...bucket.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (namespace === undefined || key.startsWith(`${namespace}/`)) out.push(clone(obj));
    }
    return out;
  }

  /** Every object of every type (for garbage collection). */
  *entries(): Generator<[string, KObject]> {
    for (const [typeKey, bucket] of this.#objects) {
      for (const obj of bucket.values()) yield [typeKey, obj];
    }
  }

  /** Stores a new or changed object, stamping the next resourceVersion; returns a copy. */
  put(typeKey: string, object: KObject): KObject {
    const key = `${object.metadata.namespace ?? ''}/${object.metadata.name ?? ''}`;
    let bucket = this.#objects.get(typeKey);
    if (bucket === undefined) {
      bucket = new Map();
      this.#objects.set(typeKey, bucket);
    }
    const previous = bucket.get(key);
    const stored = clone(object);
    this.#rv += 1;
    stored.metadata.resourceVersion = String(this.#rv);
    bucket.set(key, stored);
    this.#emit({
      type: previous === undefined ? WatchTypes.Added : WatchTypes.Modified,
      typeKey,
      rv: this.#rv,
      object: stored,
      ...(previous === undefined ? {} : { previous }),
    });
    return clone(stored);
  }

  /** Removes an object; returns its last state (with the deletion's resourceVersion). */
  remove(typeKey: string, namespace: string, name: string): KObject | undefined {
    const bucket = this.#objects.get(typeKey);
    const key = `${namespace}/${name}`;
    const previous = bucket?.get(key);
    if (bucket === undefined || previous === undefined) return undefined;
    bucket.delete(key);
    this.#rv += 1;
    const last = clone(previous);
    last.metadata.resourceVersion = String(this.#rv);
    this.#emit({ type: WatchTypes.Deleted, typeKey, rv: this.#rv, object: last, previous });
    return clone(last);
  }

  /** Removes every object of a type (CRD deletion). */
  dropType(typeKey: string): void {
    for (const obj of this.list(typeKey)) {
      this.remove(typeKey, obj.metadata.namespace ?? '', obj.metadata.name ?? '');
    }
    this.#objects.delete(typeKey);
  }

  /** Changes after `rv` of one type, or undefined when `rv` is older than the history window. */
  since(rv: number, typeKey: string): StoreEvent[] | undefined {
    if (rv < this.oldestResumable) return undefined;
    return this.#history.filter((e) => e.rv > rv && e.typeKey === typeKey);
  }

  /** Registers a listener; returns the function that removes it. */
  subscribe(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: StoreEvent): void {
    this.#history.push(event);
    if (this.#history.length > HISTORY_LIMIT)
      this.#history.splice(0, this.#history.length - HISTORY_LIMIT);
    for (const listener of [...this.#listeners]) listener(event);
  }
}
