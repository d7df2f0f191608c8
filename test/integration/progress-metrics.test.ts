// SPDX-License-Identifier: Apache-2.0
/**
 * The importer's progress endpoint read by the controller's scraper, for both counters CDI has:
 * imports (and uploads) and clones.
 */
import { describe, expect, it } from 'vitest';
import { CLONE_PROGRESS_METRIC } from '../../common/contract.js';
import { silentLogger } from '../../common/logger.js';
import { scrapeProgress } from '../../controller/progress-scraper.js';
import { startMetricsServer } from '../../importer/progress/metrics-server.js';

const UID = 'dv-uid-1';

describe('scrapeProgress against our own metrics endpoints', () => {
  it.each([
    { what: 'an importer (import counter)', metric: undefined, percent: 12.5, want: '12.50%' },
    {
      what: 'a clone (CDI clone counter)',
      metric: CLONE_PROGRESS_METRIC,
      percent: 99.999,
      want: '100.00%',
    },
  ] as const)('reads $what', async ({ metric, percent, want }) => {
    const server = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      ownerUid: UID,
      ...(metric === undefined ? {} : { metric }),
      logger: silentLogger,
    });
    try {
      server.setProgress(percent);
      const port = Number(new URL(server.url).port);
      expect(await scrapeProgress({ podIp: '127.0.0.1', port, ownerUid: UID })).toBe(want);
      expect(await scrapeProgress({ podIp: '127.0.0.1', port, ownerUid: 'other' })).toBeUndefined();
    } finally {
      await server.close();
    }
  });
});
