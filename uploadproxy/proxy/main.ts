// SPDX-License-Identifier: Apache-2.0
/**
 * `cdi uploadproxy`: the upload proxy's entry.
 *
 * `cdi uploadproxy --tls-cert-file F --tls-key-file F [--listen 0.0.0.0:8443]
 *   [--token-public-key-file F] --client-cert-file F --client-key-file F --upload-server-ca-file F
 *   [--kubeconfig F] [--cluster-domain svc.cluster.local] [--upload-server-address dns|cluster-ip]
 *   [--static-upload-server URL] [--insecure]`
 *
 * The token key is the API server's public key: a PEM file, or the `APISERVER_PUBLIC_KEY`
 * environment variable (CDI's). Upload servers are found through the Kubernetes API (in-cluster
 * service account unless `--kubeconfig`), at `https://cdi-upload-<pvc>.<ns>.<cluster-domain>:8443`
 * (`dns`, the default) or at the clusterIP of that Service (`cluster-ip`, for a proxy outside
 * the cluster network) with TLS still checked against `cdi-upload-<pvc>.<ns>.svc`;
 * `--static-upload-server` sends every upload to one server (local demos). Runs until the context's signal aborts.
 */
import { processMetricsRegistry } from '../../common/metrics-endpoint.js';
import { UploadProxyEnv } from '../../common/contract.js';
import { CdiError, ErrorCodes, errorCode, errorMessage } from '../../common/errors.js';
import { boolFlag, parseArgs, readFlagFile, stringFlag } from '../../common/cli/args.js';
import { waitForAbort, type CommandContext } from '../../common/cli/context.js';
import { UploadServerAddressModes, type UploadServerAddressMode } from './address-mode.js';
import { parseListen } from '../protocol/listen.js';
import type { KubeUploadResolverOptions } from './kube-resolver.js';
import { startUploadProxy, type UploadResolver } from './proxy.js';
import { parsePublicKey } from '../protocol/token.js';

const FLAGS = {
  listen: 'string',
  'tls-cert-file': 'string',
  'tls-key-file': 'string',
  'token-public-key-file': 'string',
  'client-cert-file': 'string',
  'client-key-file': 'string',
  'upload-server-ca-file': 'string',
  kubeconfig: 'string',
  'cluster-domain': 'string',
  'upload-server-address': 'string',
  'static-upload-server': 'string',
  insecure: 'boolean',
} as const;

/** Parses `--upload-server-address`; `CDI_INVALID_CONFIG` for anything but dns or cluster-ip. */
export function parseAddressMode(value: string | undefined): UploadServerAddressMode {
  const mode = UploadServerAddressModes.find((m) => m === (value ?? 'dns'));
  if (mode === undefined)
    throw new CdiError(
      ErrorCodes.InvalidConfig,
      `--upload-server-address ${value ?? ''}: must be ${UploadServerAddressModes.join(' or ')}`,
    );
  return mode;
}

function required(value: string | undefined, what: string): string {
  if (value === undefined) throw new CdiError(ErrorCodes.InvalidConfig, `${what} is required`);
  return value;
}

/**
 * The resolver through the Kubernetes API, loaded only when used: the Kubernetes client adds
 * about 50 MiB to the process, which a proxy with a static upload server does without.
 */
async function kubeResolver(
  kubeconfig: string | undefined,
  options: KubeUploadResolverOptions,
): Promise<UploadResolver> {
  const [{ kubeUploadResolver }, { loadKubeConfig }] = await Promise.all([
    import('./kube-resolver.js'),
    import('../protocol/kube-client.js'),
  ]);
  return kubeUploadResolver(loadKubeConfig(kubeconfig), options);
}

/** Resolves with the exit code once the signal aborts (0) or startup fails (1). */
export async function uploadProxyMain(
  argv: readonly string[],
  ctx: CommandContext,
): Promise<number> {
  try {
    const args = parseArgs(argv, FLAGS, { max: 0 });
    const insecure = boolFlag(args, 'insecure');
    const listen = parseListen(stringFlag(args, 'listen') ?? '0.0.0.0:8443');
    const keyPem = required(
      (await readFlagFile(args, 'token-public-key-file')) ??
        ctx.env[UploadProxyEnv.ApiServerPublicKey],
      `--token-public-key-file or ${UploadProxyEnv.ApiServerPublicKey}`,
    );
    const certPem = await readFlagFile(args, 'tls-cert-file');
    const tlsKeyPem = await readFlagFile(args, 'tls-key-file');
    if (!insecure && (certPem === undefined || tlsKeyPem === undefined))
      throw new CdiError(
        ErrorCodes.InvalidConfig,
        '--tls-cert-file and --tls-key-file are required (or --insecure)',
      );
    const clientCertPem = await readFlagFile(args, 'client-cert-file');
    const clientKeyPem = await readFlagFile(args, 'client-key-file');
    const serverCaPem = await readFlagFile(args, 'upload-server-ca-file');
    const staticServer = stringFlag(args, 'static-upload-server');
    const address = parseAddressMode(stringFlag(args, 'upload-server-address'));
    const resolver: UploadResolver =
      staticServer === undefined
        ? await kubeResolver(stringFlag(args, 'kubeconfig'), {
            clusterDomain: stringFlag(args, 'cluster-domain') ?? 'svc',
            address,
          })
        : () => Promise.resolve({ url: staticServer, ready: true });
    const proxy = await startUploadProxy({
      ...(certPem === undefined || tlsKeyPem === undefined
        ? {}
        : { tls: { certPem, keyPem: tlsKeyPem } }),
      tokenKey: await parsePublicKey(keyPem),
      resolver,
      ...(clientCertPem === undefined || clientKeyPem === undefined || serverCaPem === undefined
        ? {}
        : { upstreamTls: { clientCertPem, clientKeyPem, serverCaPem } }),
      host: listen.host,
      port: listen.port,
      logger: ctx.logger,
      metrics: processMetricsRegistry(),
    });
    ctx.logger.info('upload proxy listening', { url: proxy.url });
    await waitForAbort(ctx.signal);
    await proxy.close();
    return 0;
  } catch (err) {
    ctx.logger.error(errorMessage(err), { code: errorCode(err) });
    ctx.stderr.write(`${errorMessage(err)}\n`);
    return 1;
  }
}
