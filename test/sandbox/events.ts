// SPDX-License-Identifier: Apache-2.0
/** Records core/v1 Events about objects, as the provisioner and kubelet of a real cluster do. */
import type { ObjectApi } from './object-api.js';
import type { KObject } from './object.js';

/** Event type. */
export type EventType = 'Normal' | 'Warning';

/** Creates an Event about `obj` from `component`; failures are ignored (events are best effort). */
export function recordEvent(
  api: ObjectApi,
  obj: KObject,
  event: {
    readonly type: EventType;
    readonly reason: string;
    readonly message: string;
    readonly component: string;
  },
): void {
  const type = api.typeOf('v1', 'Event');
  const ns = obj.metadata.namespace ?? 'default';
  if (type === undefined) return;
  const t = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  try {
    api.create(type, ns, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${obj.metadata.name ?? 'object'}.`, namespace: ns },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      type: event.type,
      reason: event.reason,
      message: event.message,
      source: { component: event.component },
      reportingComponent: event.component,
      firstTimestamp: t,
      lastTimestamp: t,
      count: 1,
    });
  } catch {
    // Best effort, as client-go's event recorder: a namespace being deleted refuses new events.
  }
}
