// SPDX-License-Identifier: Apache-2.0
/** The Kubernetes client set-up and error mapping that the token API and the proxy share. */
import { KubeConfig } from '@kubernetes/client-node';
import { CdiError, ErrorCodes, errorMessage } from '../../common/errors.js';

/**
 * Loads the kubeconfig file given, else the one `KUBECONFIG` names, else the pod's service
 * account (in-cluster configuration), as client-go's clientcmd does.
 */
export function loadKubeConfig(
  file: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): KubeConfig {
  const kc = new KubeConfig();
  const fromEnv = env['KUBECONFIG']?.split(':').find((f) => f !== '');
  const path = file ?? fromEnv;
  if (path === undefined) kc.loadFromCluster();
  else kc.loadFromFile(path);
  return kc;
}

export function kubeError(what: string, err: unknown): CdiError {
  return new CdiError(ErrorCodes.KubeApi, `${what}: ${errorMessage(err)}`, {
    cause: err,
    retryable: true,
  });
}

export function httpCode(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number')
    return err.code;
  return undefined;
}
