// SPDX-License-Identifier: Apache-2.0
/**
 * Records core/v1 Events about DataVolumes and claims, named `<object>.<random hex>` like
 * client-go's recorder. Identical events about one object within a short window are recorded
 * once, so a reconcile that runs again with the same outcome does not spam `kubectl describe`.
 */
import { randomBytes } from 'node:crypto';
import type { CoreV1Event } from '@kubernetes/client-node';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { EventAction } from './actions.js';

/** The component name in `source.component` (CDI's controller name). */
export const EVENT_COMPONENT = 'datavolume-controller';
/** Window in which an identical event is not recorded again. */
const DEDUP_WINDOW_MS = 60_000;
/** Kubernetes caps event messages at 1 KiB (`validation.go`). */
const MAX_MESSAGE_LENGTH = 1024;

/** Builds the Event object for an action (pure). */
export function buildEvent(action: EventAction, now: Date, suffix: string): CoreV1Event {
  const t = action.target;
  return {
    metadata: { name: `${t.name}.${suffix}`, namespace: t.namespace },
    involvedObject: {
      kind: t.kind,
      apiVersion: t.apiVersion,
      name: t.name,
      namespace: t.namespace,
      uid: t.uid,
    },
    reason: action.reason,
    message: action.message.slice(0, MAX_MESSAGE_LENGTH),
    type: action.type,
    source: { component: EVENT_COMPONENT },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
    reportingComponent: EVENT_COMPONENT,
  };
}

/** Writes events through `create`, with de-duplication. */
export class EventRecorder {
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly create: (event: CoreV1Event) => Promise<void>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records an event; failures are logged, never thrown (events are best effort). */
  async record(action: EventAction): Promise<void> {
    const now = this.now();
    const key = `${action.target.uid}|${action.type}|${action.reason}|${action.message}`;
    const last = this.recent.get(key);
    if (last !== undefined && now - last < DEDUP_WINDOW_MS) return;
    this.recent.set(key, now);
    if (this.recent.size > 10_000) this.prune(now);
    this.log.info('event', {
      object: `${action.target.namespace}/${action.target.name}`,
      kind: action.target.kind,
      type: action.type,
      reason: action.reason,
      message: action.message,
    });
    try {
      await this.create(buildEvent(action, new Date(now), randomBytes(8).toString('hex')));
    } catch (err) {
      this.log.warn('recording an event failed', {
        reason: action.reason,
        error: errorMessage(err),
      });
    }
  }

  private prune(now: number): void {
    for (const [k, t] of this.recent) if (now - t >= DEDUP_WINDOW_MS) this.recent.delete(k);
  }
}
