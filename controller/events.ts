// SPDX-License-Identifier: Apache-2.0
/**
 * Records core/v1 Events about DataVolumes and claims, named `<object>.<random hex>` like
 * client-go's recorder. Which ones are written is the correlator's decision
 * (event-correlator.ts): a reconcile that runs again with the same outcome, or an import that
 * keeps failing with new messages, does not spam `kubectl describe` nor the API server.
 */
import { randomBytes } from 'node:crypto';
import type { CoreV1Event } from '@kubernetes/client-node';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { EventAction } from './actions.js';
import { correlate, newCorrelatorState } from './event-correlator.js';

/** The component name in `source.component` (CDI's controller name). */
export const EVENT_COMPONENT = 'datavolume-controller';
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

/** Writes events through `create`, with de-duplication and aggregation. */
export class EventRecorder {
  private readonly state = newCorrelatorState();

  constructor(
    private readonly create: (event: CoreV1Event) => Promise<void>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records an event; failures are logged, never thrown (events are best effort). */
  async record(wanted: EventAction): Promise<void> {
    const now = this.now();
    const action = correlate(this.state, wanted, now);
    if (action === undefined) return;
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
}
