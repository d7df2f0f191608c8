// SPDX-License-Identifier: Apache-2.0
/**
 * `cdi controller [--kubeconfig FILE] [--namespace NS] [--no-leader-elect] [--log-level L] [-v N]`:
 * the control plane. Loads the kubeconfig (the file, else `KUBECONFIG` / in-cluster config),
 * serves `/metrics`, `/healthz` and `/readyz`, waits for leadership, runs the controller until
 * SIGTERM or SIGINT, and returns the exit code (0 on a signal, 1 on a start failure or lost
 * leadership, 2 on bad arguments).
 */
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { ControllerEnv } from '../common/contract.js';
import { CdiError, ErrorCodes, errorMessage } from '../common/errors.js';
import { createLogger, levelFromVerbosity, type LogLevel } from '../common/logger.js';
import { parseControllerSettings } from './config.js';
import { Controller } from './controller.js';
import { KubeClient } from './kube.js';
import { LeaderElector } from './leader-election.js';
import { ControllerMetrics } from './metrics/registry.js';
import { startMetricsServer, type MetricsServer } from './metrics/server.js';

/** Parsed command line of `cdi controller`. */
export interface ControllerArgs {
  readonly kubeconfig: string | undefined;
  readonly namespace: string | undefined;
  readonly leaderElect: boolean;
  readonly logLevel: LogLevel;
  readonly help: boolean;
}

const USAGE =
  'usage: cdi controller [--kubeconfig FILE] [--namespace NS] [--no-leader-elect] [--log-level debug|info|warn|error] [-v N]';

/** Parses the arguments after `controller`; throws `CDI_INVALID_ARGUMENT`. */
export function parseControllerArgs(argv: readonly string[]): ControllerArgs {
  const args = argv[0] === 'controller' ? argv.slice(1) : [...argv];
  let kubeconfig: string | undefined;
  let namespace: string | undefined;
  let leaderElect = true;
  let logLevel: LogLevel = 'info';
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('-') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('-') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined || v === '')
        throw new CdiError(ErrorCodes.InvalidArgument, `${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--kubeconfig':
        kubeconfig = value();
        break;
      case '--namespace':
        namespace = value();
        break;
      case '--no-leader-elect':
        leaderElect = false;
        break;
      case '--log-level': {
        const v = value();
        if (v !== 'debug' && v !== 'info' && v !== 'warn' && v !== 'error') {
          throw new CdiError(
            ErrorCodes.InvalidArgument,
            `--log-level must be debug, info, warn or error, got ${v}`,
          );
        }
        logLevel = v;
        break;
      }
      case '-v':
      case '--v': {
        // klog's verbosity, as CDI's Deployments pass it.
        const v = value();
        if (!/^\d+$/.test(v))
          throw new CdiError(ErrorCodes.InvalidArgument, `${flag} must be a number, got ${v}`);
        logLevel = levelFromVerbosity(Number(v));
        break;
      }
      case '--help':
      case '-h':
        help = true;
        break;
      default:
        throw new CdiError(ErrorCodes.InvalidArgument, `unknown argument ${JSON.stringify(arg)}`);
    }
  }
  return { kubeconfig, namespace, leaderElect, logLevel, help };
}

function waitForSignal(): { promise: Promise<string>; dispose: () => void } {
  let dispose = (): void => undefined;
  const promise = new Promise<string>((resolve) => {
    const onTerm = (): void => resolve('SIGTERM');
    const onInt = (): void => resolve('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
    dispose = () => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
    };
  });
  return { promise, dispose };
}

/** Entry of `cdi controller`; returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let args: ControllerArgs;
  try {
    args = parseControllerArgs(argv);
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log = createLogger({ component: 'cdi-controller', level: args.logLevel });
  const signal = waitForSignal();
  let metricsServer: MetricsServer | undefined;
  try {
    const settings = parseControllerSettings(
      {
        ...process.env,
        ...(args.namespace === undefined ? {} : { [ControllerEnv.PodNamespace]: args.namespace }),
      },
      `${hostname()}-${process.pid}`,
    );
    const kc = new KubeConfig();
    if (args.kubeconfig !== undefined) kc.loadFromFile(args.kubeconfig);
    else kc.loadFromDefault();
    const client = new KubeClient(kc);
    log.info('starting', {
      server: kc.getCurrentCluster()?.server,
      importerImage: settings.importerImage,
    });

    const metrics = new ControllerMetrics();
    // What the readiness probe reports on, filled in as the process gets going.
    const state: { leading: boolean; controller?: Controller } = { leading: !args.leaderElect };
    metricsServer = await startMetricsServer({
      host: settings.metricsBindAddress,
      port: settings.metricsPort,
      registry: metrics.registry,
      // A standby replica is ready: it serves probes and waits for the Lease.
      notReady: () => {
        if (!state.leading) return undefined;
        return state.controller === undefined ? 'starting' : state.controller.notReady();
      },
    });
    log.info('serving metrics and probes', { url: metricsServer.url });

    const elector = args.leaderElect
      ? new LeaderElector({
          store: client,
          namespace: settings.namespace,
          identity: settings.identity,
          log,
        })
      : undefined;
    if (elector !== undefined) {
      const acquired = await Promise.race([elector.acquire(), signal.promise.then(() => false)]);
      if (!acquired) {
        await elector.release();
        return 0;
      }
    }
    state.leading = true;
    const controller = new Controller({ client, settings, log, metrics });
    state.controller = controller;
    await controller.start();
    log.info('controller running');
    const lost = elector === undefined ? new Promise<boolean>(() => undefined) : elector.hold();
    const outcome = await Promise.race([
      signal.promise,
      lost.then((ok) => (ok ? 'stopped' : 'lost')),
    ]);
    log.info('stopping', { reason: outcome });
    await controller.stop();
    await elector?.release();
    return outcome === 'lost' ? 1 : 0;
  } catch (err) {
    log.error('controller failed', { error: errorMessage(err) });
    return 1;
  } finally {
    signal.dispose();
    await metricsServer?.close();
  }
}
