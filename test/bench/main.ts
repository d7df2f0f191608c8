// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run bench`: measures our importer and upload path against the tools users compare them
 * with, in one run, on one generated image, and prints one line per comparison: both times, the
 * ratio (ours / theirs: below 1.0 means we are faster), the goal and whether it was met, the CPU
 * seconds of both (user + sys of every process of the pipeline) and their ratio, and our
 * peak RSS. Sections: `http` (compressed raw over HTTP), `qcow2` (local convert and HTTP import of
 * qcow2), `registry` (container disk), `upload` (qcow2 through `cdi uploadproxy` and
 * `cdi uploadserver` against `curl -T` to a plain HTTP sink; the RSS of both processes; see
 * upload-section.ts), `clone` (a network clone, `cdi clone-source` to `cdi uploadserver`, against
 * `cp --sparse=always`; clone-section.ts), `controller` (N DataVolumes at once in the sandbox:
 * time, controller CPU, API requests and writes per DataVolume, RSS; see controller-section.ts).
 * Ours and the baseline alternate, best of `--runs` each, and every output is checked
 * byte-identical to the raw image (what `qemu-img convert -O raw` makes of the qcow2) after its
 * first run. Not part of `npm test`: timings are never pass/fail.
 *
 *   npm run bench -- [--size 4Gi] [--data 1Gi] [--runs 3]
 *     [--sections http,qcow2,registry,upload,clone,controller] [--dir /tmp] [--dvs 200]
 *     [--cached 1000]
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DATA_PATH_NODE_OPTIONS } from '../../common/node-options.js';
import { formatBytes, parseQuantity } from '../../common/quantity.js';
import { startTestHttpServer, type TestHttpServer } from '../helpers/http-server.js';
import { pushContainerDisk, startRegistry } from '../helpers/registry-server.js';
import {
  checkSame,
  compareSides,
  formatRow,
  goalMet,
  type Row,
  type RowHead,
  type Side,
} from './compare.js';
import { writeBenchImage } from './image.js';
import { bestOf, q } from './measure.js';
import { uploadSection } from './upload-section.js';
import { controllerSection } from './controller-section.js';
import { cloneSection } from './clone-section.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CDI = join(ROOT, 'dist', 'cmd', 'cdi.js');

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const size = parseQuantity(flag('size', '4Gi'));
const data = parseQuantity(flag('data', '1Gi'));
const runs = Number(flag('runs', '3'));
const SECTIONS = ['http', 'qcow2', 'registry', 'upload', 'clone', 'controller'];
const sections = new Set(flag('sections', SECTIONS.join(',')).split(','));
const work = join(flag('dir', tmpdir()), 'cdi-bench');
const rows: Row[] = [];

/** Our command, run with the node options our data-path pods run with. */
function ours(args: string): string {
  return `NODE_OPTIONS=${q(DATA_PATH_NODE_OPTIONS)} ${q(process.execPath)} ${q(CDI)} ${args} --quiet`;
}

function record(row: Row): void {
  rows.push(row);
  process.stdout.write(formatRow(row));
}

/** Compares two shell scripts that both write `out`, checked against `reference`. */
async function compare(
  head: RowHead,
  oursScript: string,
  theirsScript: string,
  out: string,
  reference: string,
): Promise<void> {
  const prepare = `rm -f ${q(out)}; sync`;
  // The baselines are followed by an fsync of their output, as our import does before it reports
  // success (CDI fsyncs too): durable bytes are compared with durable bytes.
  const side = (script: string, who: string): Side => ({
    run: () => bestOf(1, script, prepare),
    check: () => checkSame(out, reference, `${head.what} (${who})`),
  });
  try {
    record(
      await compareSides(
        head,
        side(oursScript, 'ours'),
        side(`${theirsScript} && sync ${q(out)}`, head.baseline),
        runs,
      ),
    );
  } finally {
    await rm(out, { force: true });
  }
}

/**
 * The qcow2 of the raw image, made once (named after it: another --size never reuses it) and
 * checked to hold the same disk, so the raw image is what `qemu-img convert -O raw` makes of it.
 */
async function qcow2Of(raw: string): Promise<string> {
  const plain = `${raw}.qcow2`;
  if (!existsSync(plain)) {
    await bestOf(1, `qemu-img convert -O qcow2 ${q(raw)} ${q(plain)}.tmp`);
    await bestOf(1, `qemu-img compare -q -f raw -F qcow2 ${q(raw)} ${q(plain)}.tmp`);
    await rename(`${plain}.tmp`, plain);
  }
  return plain;
}

async function httpSection(server: TestHttpServer, raw: string, out: string): Promise<void> {
  const cases = [
    {
      name: 'zstd',
      make: `zstd -q -T2 -3 -f ${q(raw)} -o ${q(raw)}.zst`,
      file: `${raw}.zst`,
      baseline: 'curl | zstd -d --sparse',
      theirs: (u: string) => `curl -s ${q(u)} | zstd -q -d --sparse -o ${q(out)}`,
      goal: 1.0,
    },
    {
      name: 'xz -T2',
      make: `xz -T2 -1 -k -f ${q(raw)}`,
      file: `${raw}.xz`,
      baseline: 'curl | xz -dc -T2 | cp --sparse',
      theirs: (u: string) =>
        `curl -s ${q(u)} | xz -dc -T2 | cp --sparse=always /dev/stdin ${q(out)}`,
      goal: 1.0,
    },
    {
      name: 'gzip',
      make: `pigz -1 -k -f ${q(raw)}`,
      file: `${raw}.gz`,
      baseline: 'curl | pigz -dc | cp --sparse',
      theirs: (u: string) => `curl -s ${q(u)} | pigz -dc | cp --sparse=always /dev/stdin ${q(out)}`,
      goal: 0.6,
    },
  ];
  for (const c of cases) {
    if (!existsSync(c.file)) await bestOf(1, c.make);
    const path = `/${c.file.split('/').pop() ?? ''}`;
    server.options.files = { ...server.options.files, [path]: { path: c.file } };
    const url = server.url(path);
    await compare(
      { section: 'http', what: `raw.${c.name} import`, baseline: c.baseline, goal: c.goal },
      ours(`import --source ${q(url)} --dest ${q(out)}`),
      c.theirs(url),
      out,
      raw,
    );
  }
}

async function qcow2Section(server: TestHttpServer, raw: string, out: string): Promise<void> {
  const plain = await qcow2Of(raw);
  const packed = `${raw}.zlib.qcow2`;
  if (!existsSync(packed)) await bestOf(1, `qemu-img convert -c -O qcow2 ${q(raw)} ${q(packed)}`);
  for (const [what, file] of [
    ['qcow2 convert', plain],
    ['zlib qcow2 convert', packed],
  ] as const) {
    await compare(
      {
        section: 'qcow2',
        what,
        baseline: 'qemu-img convert -O raw',
        goal: what.startsWith('zlib') ? 0.5 : 0.9,
      },
      ours(`convert ${q(file)} ${q(out)}`),
      `qemu-img convert -O raw ${q(file)} ${q(out)}`,
      out,
      raw,
    );
  }
  server.options.files = { ...server.options.files, '/disk.qcow2': { path: plain } };
  const url = server.url('/disk.qcow2');
  const scratch = join(work, 'scratch.qcow2');
  await compare(
    {
      section: 'qcow2',
      what: 'qcow2 HTTP import',
      baseline: 'curl to scratch + qemu-img convert',
      goal: 0.6,
    },
    ours(`import --source ${q(url)} --dest ${q(out)}`),
    `curl -s -o ${q(scratch)} ${q(url)} && qemu-img convert -t writeback -O raw ${q(scratch)} ${q(out)} && rm -f ${q(scratch)}`,
    out,
    raw,
  );
  await compare(
    {
      section: 'qcow2',
      what: 'qcow2 HTTP import',
      baseline: 'nbdkit curl + qemu-img convert',
      goal: 0.8,
    },
    ours(`import --source ${q(url)} --dest ${q(out)}`),
    `nbdkit -U - curl url=${q(url)} --run ${q(`qemu-img convert -O raw "$uri" ${q(out)}`)}`,
    out,
    raw,
  );
}

async function registrySection(raw: string, out: string): Promise<void> {
  const plain = await qcow2Of(raw);
  const registry = await startRegistry();
  try {
    await pushContainerDisk({
      registry,
      target: 'bench/disk:latest',
      diskFile: plain,
      diskName: 'disk.qcow2',
      workDir: work,
    });
    const image = `docker://${registry.host}/bench/disk:latest`;
    const dir = join(work, 'skopeo');
    const script =
      `rm -rf ${q(dir)} && skopeo copy --src-tls-verify=false ${q(image)} dir:${q(dir)} >/dev/null && ` +
      `mkdir -p ${q(dir)}/x && for f in ${q(dir)}/*; do tar -xzf "$f" -C ${q(dir)}/x disk 2>/dev/null || true; done && ` +
      `qemu-img convert -t writeback -O raw ${q(dir)}/x/disk/disk.qcow2 ${q(out)} && rm -rf ${q(dir)}`;
    await compare(
      {
        section: 'registry',
        what: 'qcow2 container disk import',
        baseline: 'skopeo copy + tar + qemu-img convert',
        goal: 0.4,
      },
      ours(`import --source ${q(image)} --dest ${q(out)} --insecure-tls`),
      script,
      out,
      raw,
    );
  } finally {
    await registry.close();
  }
}

async function main(): Promise<void> {
  if (!existsSync(CDI)) throw new Error(`build first: ${CDI} is missing (npm run build)`);
  const unknown = [...sections].filter((s) => !SECTIONS.includes(s));
  if (unknown.length > 0)
    throw new Error(`unknown section ${unknown.join(', ')} (sections: ${SECTIONS.join(',')})`);
  await mkdir(work, { recursive: true });
  const raw = join(work, `disk-${size}-${data}.raw`);
  const imageSections = SECTIONS.filter((s) => s !== 'controller' && sections.has(s));
  if (imageSections.length > 0 && !existsSync(raw)) {
    process.stdout.write(
      `generating a ${formatBytes(size)} image with ${formatBytes(data)} of data in ${work}\n`,
    );
    await writeBenchImage(raw, size, data);
  }
  const out = join(work, 'out.img');
  const server = await startTestHttpServer({ files: {} });
  try {
    if (sections.has('http')) await httpSection(server, raw, out);
    if (sections.has('qcow2')) await qcow2Section(server, raw, out);
    if (sections.has('registry')) await registrySection(raw, out);
    if (sections.has('upload'))
      record(
        await uploadSection({
          cdi: CDI,
          qcow2: await qcow2Of(raw),
          reference: raw,
          out,
          work,
          runs,
        }),
      );
    if (sections.has('clone')) record(await cloneSection({ cdi: CDI, raw, out, work, runs }));
  } finally {
    await server.close();
  }
  if (sections.has('controller'))
    await controllerSection({
      count: Number(flag('dvs', '200')),
      cached: Number(flag('cached', '1000')),
      print: (line) => process.stdout.write(line),
    });
  const met = rows.filter(goalMet).length;
  process.stdout.write(
    `\n${rows.length} comparisons, ${met} met their goal; image ${formatBytes(size)} with ` +
      `${formatBytes(data)} of data; best of ${runs}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
