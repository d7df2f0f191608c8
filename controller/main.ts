// SPDX-License-Identifier: Apache-2.0
/**
 * `cdi controller [--kubeconfig FILE] [-n|--namespace NS] [--no-leader-elect]`: the control
 * plane. Runs through the same {@link CommandContext} as every verb (cmd/cli.ts builds the logger,
 * the one AbortSignal wired to SIGINT/SIGTERM, and takes `--log-level`/`-v`). Loads the kubeconfig
 * (the file, else `KUBECONFIG` / in-cluster config), waits for leadership, runs the controller
 * until the signal aborts, and returns the exit code (0 after a signal, 1 on a start failure or
 * lost leadership; bad arguments are usage errors).
 */
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { ControllerEnv } from '../common/contract.js';
import { errorMessage } from '../common/errors.js';
import { boolFlag, parseArgs, stringFlag } from '../common/cli/args.js';
import { waitForAbort, type CommandContext } from '../common/cli/context.js';
import { parseControllerSettings } from './config.js';
import { Controller } from './controller.js';
import { KubeClient } from './kube.js';
import { LeaderElector } from './leader-election.js';

/** Parsed command line of `cdi controller`. */
export interface ControllerArgs {
  readonly kubeconfig: string | undefined;
  readonly namespace: string | undefined;
  readonly leaderElect: boolean;
}

/** Parses the arguments after `controller`; throws a usage error. */
export function parseControllerArgs(argv: readonly string[]): ControllerArgs {
  const args = parseArgs(
    argv,
    {
      kubeconfig: 'string',
      namespace: { type: 'string', short: 'n' },
      'no-leader-elect': 'boolean',
    },
    { max: 0 },
  );
  return {
    kubeconfig: stringFlag(args, 'kubeconfig'),
    namespace: stringFlag(args, 'namespace'),
    leaderElect: !boolFlag(args, 'no-leader-elect'),
  };
}

/** Entry of `cdi controller`; returns the process exit code. */
export async function controllerMain(
  argv: readonly string[],
  ctx: CommandContext,
): Promise<number> {
  const args = parseControllerArgs(argv);
  const log = ctx.logger;
  const stopped = waitForAbort(ctx.signal).then(() => 'signal' as const);
  try {
    const settings = parseControllerSettings(
      {
        ...ctx.env,
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

    const elector = args.leaderElect
      ? new LeaderElector({
          store: client,
          namespace: settings.namespace,
          identity: settings.identity,
          log,
        })
      : undefined;
    if (elector !== undefined) {
      const acquired = await Promise.race([elector.acquire(), stopped.then(() => false)]);
      if (!acquired) {
        await elector.release();
        return 0;
      }
    }
    const controller = new Controller({ client, settings, log });
    await controller.start();
    log.info('controller running');
    const lost = elector === undefined ? new Promise<boolean>(() => undefined) : elector.hold();
    const outcome = await Promise.race([stopped, lost.then((ok) => (ok ? 'stopped' : 'lost'))]);
    log.info('stopping', { reason: outcome });
    await controller.stop();
    await elector?.release();
    return outcome === 'lost' ? 1 : 0;
  } catch (err) {
    log.error('controller failed', { error: errorMessage(err) });
    return 1;
  }
}
