// SPDX-License-Identifier: Apache-2.0
/**
 * A resilient informer: @kubernetes/client-node's `ListWatch` (list, then watch from the list's
 * resourceVersion, relist on 410 Gone) plus what it leaves to the caller: restart after any other
 * error with capped exponential backoff (kubernetes-client `cache.ts`), a single change
 * callback for add, update and delete, and a transform applied to every object before it is
 * cached (by default {@link trimForCache}: the cache holds only what the controller reads).
 */
import {
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { trimForCache } from './cache-transform.js';

/** A watch whose events carry objects already transformed for the cache. */
class TransformingWatch<T> extends Watch {
  constructor(
    kubeConfig: KubeConfig,
    private readonly transform: (obj: T) => T,
  ) {
    super(kubeConfig);
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: T, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    // Bookmarks and errors carry no object to cache; they pass through unchanged.
    return super.watch(
      path,
      queryParams,
      (phase, obj: T, raw) =>
        callback(phase, phase === 'ADDED' || phase === 'MODIFIED' ? this.transform(obj) : obj, raw),
      done,
    );
  }
}

/** Options of {@link ResilientInformer}. */
export interface InformerOptions<T extends KubernetesObject> {
  readonly kubeConfig: KubeConfig;
  /** Watch path, e.g. `/api/v1/persistentvolumeclaims`. */
  readonly path: string;
  /** Lists the resource (all namespaces), with {@link labelSelector} when one is given. */
  readonly list: () => Promise<KubernetesListObject<T>>;
  /** Watch only objects with these labels (`key=value,...`). */
  readonly labelSelector?: string;
  readonly log: Logger;
  /** Called for every added, updated or deleted object. */
  readonly onChange: (obj: T, verb: 'add' | 'update' | 'delete') => void;
  /** Waits between restarts; injectable for tests. */
  readonly delay?: (ms: number) => Promise<void>;
  /** First restart delay (default 1 s), doubled up to `maxRestartDelayMs` (default 30 s). */
  readonly baseRestartDelayMs?: number;
  readonly maxRestartDelayMs?: number;
  /**
   * Applied to every listed or watched object before it is cached and handed to `onChange`
   * (default {@link trimForCache}); may change the object in place.
   */
  readonly transform?: (obj: T) => T;
}

/** A cache of one resource kept current by list and watch. */
export class ResilientInformer<T extends KubernetesObject> implements ObjectCache<T> {
  private readonly lw: ListWatch<T>;
  private stopped = false;
  private restartDelayMs = 0;
  private readonly delay: (ms: number) => Promise<void>;

  constructor(private readonly options: InformerOptions<T>) {
    this.delay = options.delay ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    const transform = options.transform ?? trimForCache;
    const list = async (): Promise<KubernetesListObject<T>> => {
      const listed = await options.list();
      return { ...listed, items: listed.items.map(transform) };
    };
    this.lw = new ListWatch<T>(
      options.path,
      new TransformingWatch<T>(options.kubeConfig, transform),
      list,
      false,
      options.labelSelector,
    );
    this.lw.on('add', (o) => options.onChange(o, 'add'));
    this.lw.on('update', (o) => options.onChange(o, 'update'));
    this.lw.on('delete', (o) => options.onChange(o, 'delete'));
    this.lw.on('connect', () => {
      this.restartDelayMs = 0;
    });
    this.lw.on('error', (err: unknown) => void this.restart(err));
  }

  /** Lists and starts watching; resolves once the cache holds the first list. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.lw.start();
  }

  /** Stops watching for good. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.lw.stop();
  }

  /** The cached object, if any. */
  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  /** Every cached object, optionally of one namespace. */
  list(namespace?: string): readonly T[] {
    return this.lw.list(namespace);
  }

  private async restart(err: unknown): Promise<void> {
    if (this.stopped) return;
    const base = this.options.baseRestartDelayMs ?? 1000;
    const max = this.options.maxRestartDelayMs ?? 30_000;
    this.restartDelayMs = Math.min(this.restartDelayMs === 0 ? base : this.restartDelayMs * 2, max);
    this.options.log.warn('watch failed, restarting', {
      path: this.options.path,
      error: errorMessage(err),
      delayMs: this.restartDelayMs,
    });
    await this.delay(this.restartDelayMs);
    if (this.stopped) return;
    try {
      await this.lw.start();
    } catch (e) {
      await this.restart(e);
    }
  }
}
