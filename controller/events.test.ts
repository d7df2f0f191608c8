// SPDX-License-Identifier: Apache-2.0
import type { CoreV1Event } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../common/logger.js';
import type { EventAction } from './actions.js';
import { buildEvent, EventRecorder } from './events.js';

const action: EventAction = {
  kind: 'event',
  target: {
    kind: 'DataVolume',
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    namespace: 'ns',
    name: 'dv',
    uid: 'u',
  },
  type: 'Normal',
  reason: 'ImportSucceeded',
  message: 'Successfully imported into PVC dv',
};

describe('events', () => {
  it('builds a core/v1 Event about the object', () => {
    const e = buildEvent(action, new Date(0), 'abc');
    expect(e.metadata.name).toBe('dv.abc');
    expect(e.involvedObject).toEqual({
      kind: 'DataVolume',
      apiVersion: 'cdi.kubevirt.io/v1beta1',
      name: 'dv',
      namespace: 'ns',
      uid: 'u',
    });
    expect(e).toMatchObject({
      reason: 'ImportSucceeded',
      type: 'Normal',
      count: 1,
      source: { component: 'datavolume-controller' },
    });
  });

  it('records identical events once per window and survives API failures', async () => {
    const created: CoreV1Event[] = [];
    let clock = 0;
    let fail = false;
    const rec = new EventRecorder(
      (e) => {
        if (fail) return Promise.reject(new Error('api down'));
        created.push(e);
        return Promise.resolve();
      },
      silentLogger,
      () => clock,
    );
    await rec.record(action);
    await rec.record(action);
    await rec.record({ ...action, message: 'other' });
    clock = 61_000;
    await rec.record(action);
    fail = true;
    await expect(rec.record({ ...action, reason: 'X' })).resolves.toBeUndefined();
    expect(created.map((e) => e.message)).toEqual([action.message, 'other', action.message]);
  });
});
