// SPDX-License-Identifier: Apache-2.0
/**
 * A sandbox running the upload proxy and the token API on an upload PKI seeded in place of the
 * controller's: the set-up of the tests that exercise those components without a controller.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import {
  createSeedObjects,
  seedUploadPki,
  type SeededUploadPki,
} from '../sandbox/upload-pki-seed.js';

/** The sandbox and the PKI seeded into it. */
export interface SeededSandbox {
  readonly sandbox: Sandbox;
  readonly pki: SeededUploadPki;
  /** Stops the sandbox and removes the PKI's files. */
  stop(): Promise<void>;
}

/** Seeds the upload PKI (files in a temp dir), then starts the sandbox with the upload proxy. */
export async function startSeededSandbox(): Promise<SeededSandbox> {
  const seedDir = await mkdtemp(join(tmpdir(), 'cdi-seed-'));
  const pki = await seedUploadPki(seedDir);
  const sandbox = await startSandbox({
    uploadProxy: true,
    beforeComponents: (kubeconfig) => createSeedObjects(kubeconfig, pki.objects),
  });
  return {
    sandbox,
    pki,
    stop: async () => {
      await sandbox.stop();
      await rm(seedDir, { recursive: true, force: true });
    },
  };
}
