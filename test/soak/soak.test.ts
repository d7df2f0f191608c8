// SPDX-License-Identifier: Apache-2.0
/**
 * The short seeded soak of CI: a few imports through `cdi import` and DataVolumes in the sandbox
 * against the misbehaving server, with importer and controller kills. Every import must end
 * identical to qemu-img's output or with a clear error and no file.
 */
import { describe, expect, it } from 'vitest';
import { runSoak } from './soak.js';

describe('fault-injection soak (short, seeded)', () => {
  it('every import ends identical to qemu-img or with a clear error and no file', async () => {
    const report = await runSoak({ imports: 8, seed: 17, dataVolumeShare: 0.25 });
    expect(report.anomalies).toEqual([]);
    expect(report.outcomes.identical + report.outcomes.clearError).toBe(8);
    // The server did misbehave, and both paths ran.
    expect(Object.values(report.faults).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(report.byPath.cli).toBeGreaterThan(0);
    expect(report.byPath.dataVolume).toBeGreaterThan(0);
  });
});
