// SPDX-License-Identifier: Apache-2.0
/**
 * The `upload` section of `npm run bench` (issue 6): a qcow2 uploaded with `curl -T` through
 * `cdi uploadproxy` and `cdi uploadserver` (HTTPS with a token to the proxy, mTLS from the proxy to
 * the server, which converts the stream to raw and fsyncs before its 200) against `curl -T` of the
 * same file to a plain HTTP sink that fdatasyncs before its 200 (http-sink.ts). The proxy and the
 * server are started for each run before the clock starts, as an upload pod is ready before its
 * upload; each runs under GNU time, which gives its peak RSS.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ImporterEnv, UPLOAD_CLIENT_NAME, UploadServerEnv } from '../../common/contract.js';
import { publicKeyPemOf, signUploadToken } from '../../uploadproxy/protocol/token.js';
import { createUploadPki, type UploadPki } from '../helpers/upload-pki.js';
import { DATA_PATH_NODE_OPTIONS } from '../../common/node-options.js';
import { checkSame, compareSides, type Row, type Side } from './compare.js';
import { measure, processCpuSeconds, q, type Measurement } from './measure.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** Options of {@link uploadSection}. */
export interface UploadSectionOptions {
  /** `dist/cmd/cdi.js`. */
  readonly cdi: string;
  /** The qcow2 to upload. */
  readonly qcow2: string;
  /** What `qemu-img convert -O raw` makes of it. */
  readonly reference: string;
  /** Where both sides write (removed before every run and at the end). */
  readonly out: string;
  /** A directory for certificates, keys and the upload server's directories. */
  readonly work: string;
  readonly runs: number;
}

/** A process of ours started under GNU time. */
export interface Daemon {
  readonly url: string;
  /**
   * Resolves with the peak RSS and CPU seconds once the process exited with 0 (or 130 after
   * {@link Daemon.interrupt}); rejects otherwise.
   */
  readonly ended: Promise<{ readonly rssMiB: number; readonly cpuSeconds: number }>;
  /** Asks the process to stop (SIGINT, which GNU time ignores and `cdi` handles). */
  interrupt(): void;
  /** Kills the process unless it has ended. */
  kill(): void;
}

/** Starts `cdi VERB` under GNU time and resolves once it logged `listening` with its URL. */
export async function startCdi(o: {
  readonly cdi: string;
  readonly verb: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly rssFile: string;
  readonly listening: string;
}): Promise<Daemon> {
  // BENCH_NODE_ARGS: node flags for our processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
  // (not allowed in NODE_OPTIONS).
  const nodeArgs = (process.env['BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const child = spawn(
    '/usr/bin/time',
    ['-f', '%M %U %S', '-o', o.rssFile, process.execPath, ...nodeArgs, o.cdi, o.verb, ...o.args],
    {
      env: { ...process.env, ...o.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const tail: string[] = [];
  let exited = false;
  const closed = once(child, 'close').then(([code, signal]: unknown[]) => {
    exited = true;
    return String(code ?? signal);
  });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      const entry = parseLogLine(line);
      if (entry?.['msg'] === o.listening && typeof entry['url'] === 'string') resolve(entry['url']);
    });
    void closed.then((status) =>
      reject(new Error(`cdi ${o.verb} ended (${status}) before listening:\n${tail.join('\n')}`)),
    );
  });
  // `cdi` is GNU time's child: signals go to it directly.
  const children = await readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8');
  const pid = Number.parseInt(children.trim().split(' ')[0] ?? '', 10);
  if (!Number.isInteger(pid)) throw new Error(`cannot find the pid of cdi ${o.verb}`);
  let interrupted = false;
  const signal = (sig: NodeJS.Signals): void => {
    if (!exited) process.kill(pid, sig);
  };
  const ended = closed.then(async (status) => {
    // `cdi` exits 130 after SIGINT, as a shell command does: the end asked for.
    const expected = interrupted ? ['0', '130'] : ['0'];
    if (!expected.includes(status))
      throw new Error(`cdi ${o.verb} exited with ${status}:\n${tail.join('\n')}`);
    const lines = (await readFile(o.rssFile, 'utf8')).trim().split('\n');
    const [kib = 0, user = 0, sys = 0] = (lines[lines.length - 1] ?? '').split(' ').map(Number);
    return { rssMiB: kib / 1024, cpuSeconds: user + sys };
  });
  // Observed by the caller on success; this keeps a failure path from an unhandled rejection.
  ended.catch(() => undefined);
  const interrupt = (): void => {
    interrupted = true;
    signal('SIGINT');
  };
  return { url, ended, interrupt, kill: () => signal('SIGKILL') };
}

function parseLogLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts `cdi uploadserver` as the controller runs upload server pods, writing to `out`
 * (`dir/data` as its data directory, its RSS file and termination log in `dir`).
 */
export function startUploadServer(o: {
  readonly cdi: string;
  readonly dir: string;
  readonly out: string;
  readonly pki: UploadPki;
  /** The client certificate's name the server accepts. */
  readonly clientName: string;
  readonly scratchDir: string;
}): Promise<Daemon> {
  return startCdi({
    cdi: o.cdi,
    verb: 'uploadserver',
    args: [],
    env: {
      [UploadServerEnv.TlsKeyFile]: o.pki.serverKeyFile,
      [UploadServerEnv.TlsCertFile]: o.pki.serverCertFile,
      [UploadServerEnv.ClientCertFile]: o.pki.caFile,
      [UploadServerEnv.ClientName]: o.clientName,
      [UploadServerEnv.Destination]: o.out,
      [UploadServerEnv.ListenAddress]: '127.0.0.1:0',
      [UploadServerEnv.FilesystemOverhead]: '0',
      [UploadServerEnv.Preallocation]: 'false',
      [ImporterEnv.DataDir]: join(o.dir, 'data'),
      [ImporterEnv.ScratchDir]: o.scratchDir,
      [ImporterEnv.TerminationLog]: join(o.dir, 'termination-log'),
      NODE_OPTIONS: DATA_PATH_NODE_OPTIONS,
    },
    rssFile: join(o.dir, 'server.rss'),
    listening: 'upload server listening',
  });
}

/** Our side: a fresh upload server and proxy per run, `curl -T` through them. */
async function oursSide(o: UploadSectionOptions, pki: UploadPki): Promise<Side> {
  const dir = join(o.work, 'upload');
  await mkdir(join(dir, 'data'), { recursive: true });
  await mkdir(join(dir, 'scratch'), { recursive: true });
  const file = (name: string, text: string): Promise<string> =>
    writeFile(join(dir, name), text).then(() => join(dir, name));
  const tokenPub = await file('token.pub', publicKeyPemOf(pki.tokenKeys.privateKey));
  const clientCert = await file('client.crt', pki.clientCertPem);
  const clientKey = await file('client.key', pki.clientKeyPem);
  const run = async (): Promise<Measurement> => {
    await measure(`rm -f ${q(o.out)}; sync`);
    const server = await startUploadServer({
      cdi: o.cdi,
      dir,
      out: o.out,
      pki,
      clientName: UPLOAD_CLIENT_NAME,
      scratchDir: join(dir, 'scratch'),
    });
    let proxy: Daemon | undefined;
    try {
      proxy = await startCdi({
        cdi: o.cdi,
        verb: 'uploadproxy',
        args: [
          ...['--listen', '127.0.0.1:0', '--static-upload-server', server.url],
          ...['--tls-cert-file', pki.serverCertFile, '--tls-key-file', pki.serverKeyFile],
          ...['--token-public-key-file', tokenPub, '--upload-server-ca-file', pki.caFile],
          ...['--client-cert-file', clientCert, '--client-key-file', clientKey],
        ],
        env: {},
        rssFile: join(dir, 'proxy.rss'),
        listening: 'upload proxy listening',
      });
      const token = await signUploadToken(
        pki.tokenKeys.privateKey,
        { namespace: 'bench', pvc: 'disk' },
        { lifetimeSeconds: 3600 },
      );
      const m = await measure(
        `curl -sSf -o /dev/null --cacert ${q(pki.caFile)} -H ${q(`Authorization: Bearer ${token}`)} ` +
          `-T ${q(o.qcow2)} ${q(`${proxy.url}/v1beta1/upload`)}`,
      );
      // The server exits by itself after its upload; the proxy runs until told to stop.
      const srv = await server.ended;
      proxy.interrupt();
      const prx = await proxy.ended;
      return {
        seconds: m.seconds,
        cpuSeconds: m.cpuSeconds + srv.cpuSeconds + prx.cpuSeconds,
        peakRssMiB: Math.max(prx.rssMiB, srv.rssMiB),
        peakRssByProcessMiB: { proxy: prx.rssMiB, server: srv.rssMiB },
      };
    } finally {
      proxy?.kill();
      server.kill();
    }
  };
  return { run, check: () => checkSame(o.out, o.reference, 'qcow2 upload (ours)') };
}

/** The baseline's sink process: one for all runs. */
async function startSink(
  target: string,
): Promise<{ url: string; cpuSeconds(): Promise<number>; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [join(HERE, 'http-sink.js'), target], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const closed = once(child, 'close');
  const lines = createInterface({ input: child.stdout });
  const first = await Promise.race([
    once(lines, 'line').then(([line]: unknown[]) => String(line)),
    closed.then(() => undefined),
  ]);
  if (first === undefined) throw new Error('http-sink ended before listening');
  const { url } = JSON.parse(first) as { url: string };
  const { pid } = child;
  if (pid === undefined) throw new Error('http-sink has no pid');
  return {
    url,
    cpuSeconds: () => processCpuSeconds(pid),
    stop: async () => {
      child.kill('SIGTERM');
      await closed;
    },
  };
}

/** Runs the section's one comparison and returns its row (printing is the caller's). */
export async function uploadSection(o: UploadSectionOptions): Promise<Row> {
  const pki = await createUploadPki();
  const sink = await startSink(o.out);
  try {
    const theirs: Side = {
      run: async () => {
        await measure(`rm -f ${q(o.out)}; sync`);
        const before = await sink.cpuSeconds();
        const m = await measure(
          `curl -sSf -o /dev/null -T ${q(o.qcow2)} ${q(`${sink.url}/disk.qcow2`)}`,
        );
        // The sink answers after its fdatasync: its work for this upload is done when curl ends.
        return { ...m, cpuSeconds: m.cpuSeconds + (await sink.cpuSeconds()) - before };
      },
      check: () => checkSame(o.out, o.qcow2, 'qcow2 upload (HTTP sink)'),
    };
    return await compareSides(
      {
        section: 'upload',
        what: 'qcow2 upload via proxy + server',
        baseline: 'curl -T to an HTTP sink + fdatasync',
        // Issue 6 sets no ratio; ours crosses two TLS hops and converts, on the cores curl uses.
        goal: 1.3,
      },
      await oursSide(o, pki),
      theirs,
      o.runs,
    );
  } finally {
    await sink.stop();
    await pki.cleanup();
    await rm(join(o.work, 'upload'), { recursive: true, force: true });
    await rm(o.out, { force: true });
  }
}
