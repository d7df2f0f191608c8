// SPDX-License-Identifier: Apache-2.0
/**
 * Test fixtures made at test time with the real qemu-img and qemu-io (never committed), and the
 * reference output of `qemu-img convert -O raw`.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** How to build one image. */
export interface ImageSpec {
  /** Row name for the test table. */
  readonly what: string;
  /** `qemu-img create -o` options, e.g. `compat=1.1,cluster_size=4096`. */
  readonly options: string;
  /** Virtual size as qemu-img takes it (`4M`, `5243392`). */
  readonly size: string;
  /** qemu-io commands, each one `-c` (`write -P 0xab 0 64k`, `write -z ...`, `discard ...`). */
  readonly io: readonly string[];
  /** Recompress with `qemu-img convert -c` (options reapplied). */
  readonly compress?: boolean;
  /** Take an internal snapshot after these commands, then run `ioAfterSnapshot`. */
  readonly ioAfterSnapshot?: readonly string[];
}

/** A temporary directory removed by `cleanup`. */
export async function makeTempDir(
  prefix: string,
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Runs a program, failing with its stderr. */
export async function sh(file: string, args: readonly string[]): Promise<string> {
  const { stdout } = await run(file, [...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Builds the image described by `spec` in `dir`; returns its path. */
export async function makeImage(dir: string, name: string, spec: ImageSpec): Promise<string> {
  const base = join(dir, `${name}.base.qcow2`);
  const out = join(dir, `${name}.qcow2`);
  await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', spec.options, base, spec.size]);
  const io = async (cmds: readonly string[]): Promise<void> => {
    if (cmds.length > 0) await sh('qemu-io', [...cmds.flatMap((c) => ['-c', c]), base]);
  };
  await io(spec.io);
  if (spec.ioAfterSnapshot !== undefined) {
    await sh('qemu-img', ['snapshot', '-c', 'snap1', base]);
    await io(spec.ioAfterSnapshot);
  }
  if (spec.compress === true) {
    await sh('qemu-img', ['convert', '-c', '-O', 'qcow2', '-o', spec.options, base, out]);
    await rm(base);
  } else {
    await sh('mv', [base, out]);
  }
  return out;
}

/** `qemu-img convert -O raw` of `image` into `out`. */
export async function qemuRaw(image: string, out: string): Promise<void> {
  await sh('qemu-img', ['convert', '-O', 'raw', image, out]);
}

/** True when `cmp` finds the files identical. */
export async function sameBytes(a: string, b: string): Promise<boolean> {
  try {
    await sh('cmp', [a, b]);
    return true;
  } catch {
    return false;
  }
}
