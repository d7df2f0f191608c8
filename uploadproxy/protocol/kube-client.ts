// SPDX-License-Identifier: Apache-2.0
/** The Kubernetes client set-up and error mapping that the token API and the proxy share. */
import { KubeConfig } from '@kubernetes/client-node';
import { CdiError, ErrorCodes, errorMessage } from '../../common/errors.js';

/** Loads a kubeconfig file, or the in-cluster service account when no file is given. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file === undefined) kc.loadFromCluster();
  else kc.loadFromFile(file);
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
