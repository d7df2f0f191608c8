// SPDX-License-Identifier: Apache-2.0
/**
 * `cdi apiserver`: the token API's entry (the aggregated API `upload.cdi.kubevirt.io`) and CDI's
 * admission webhooks: DataVolume, DataSource, CDIConfig, StorageProfile and CDI validation
 * (`/datavolume-validate`, `/datasource-validate`, `/cdiconfig-validate`,
 * `/storageprofile-validate`, `/cdi-validate`) and, with a kubeconfig or
 * in-cluster, the DataVolume and PVC mutating webhooks (`/datavolume-mutate`, `/pvc-mutate`).
 *
 * `cdi apiserver --tls-cert-file F --tls-key-file F [--listen 0.0.0.0:8443]
 *   [--token-key-file F] [--public-key-out F] [--requestheader-client-ca-file F]
 *   (--kubeconfig F | --in-cluster | --insecure-allow-all) [--insecure]`
 *
 * Without `--requestheader-client-ca-file`, the front proxy's CA and allowed names are read from
 * `kube-system/extension-apiserver-authentication`, as every aggregated API server does.
 * `--token-key-file` is the RSA private key that signs tokens (kept in a Secret); without it a
 * key is generated and its public half written to `--public-key-out` for the proxy. Callers are
 * authorised with a SubjectAccessReview through the Kubernetes API; `--insecure-allow-all` lets
 * anyone mint tokens and trusts X-Remote-User headers blindly (tests only).
 */
import { processMetricsRegistry } from '../../common/metrics-endpoint.js';
import { writeFile } from 'node:fs/promises';
import { CdiError, ErrorCodes, errorCode, errorMessage } from '../../common/errors.js';
import { boolFlag, parseArgs, readFlagFile, stringFlag } from '../../common/cli/args.js';
import { waitForAbort, type CommandContext } from '../../common/cli/context.js';
import {
  allowAll,
  remoteHeaderAuthenticator,
  startTokenApiServer,
  type Authenticator,
  type Authorizer,
} from './token-api.js';
import {
  readRequestHeaderAuthentication,
  subjectAccessReviewAuthorizer,
  tokenReviewAuthenticator,
} from './kube-auth.js';
import { loadKubeConfig } from '../protocol/kube-client.js';
import { kubeAdmissionDeps } from './admission-kube.js';
import { DATAVOLUME_MUTATE_PATH, admitDataVolume } from './datavolume-mutate.js';
import { DATAVOLUME_VALIDATE_PATH, validateDataVolumeReview } from './datavolume-validate.js';
import { DATASOURCE_VALIDATE_PATH, validateDataSourceReview } from './datasource-validate.js';
import {
  CDICONFIG_VALIDATE_PATH,
  CDI_VALIDATE_PATH,
  STORAGEPROFILE_VALIDATE_PATH,
  validateCdiConfigReview,
  validateCdiReview,
  validateStorageProfileReview,
} from './config-validate.js';
import { PVC_MUTATE_PATH, mutatePvcReview } from './pvc-mutate.js';
import { kubePvcMutateDeps } from './storage-profile-kube.js';
import { parseListen } from '../protocol/listen.js';
import { generateTokenKeys, loadPrivateKey, publicKeyPemOf } from '../protocol/token.js';

const FLAGS = {
  listen: 'string',
  'tls-cert-file': 'string',
  'tls-key-file': 'string',
  'token-key-file': 'string',
  'public-key-out': 'string',
  'requestheader-client-ca-file': 'string',
  kubeconfig: 'string',
  'in-cluster': 'boolean',
  'insecure-allow-all': 'boolean',
  insecure: 'boolean',
} as const;

/** Resolves with the exit code once the signal aborts (0) or startup fails (1). */
export async function apiServerMain(argv: readonly string[], ctx: CommandContext): Promise<number> {
  try {
    const args = parseArgs(argv, FLAGS, { max: 0 });
    const listen = parseListen(stringFlag(args, 'listen') ?? '0.0.0.0:8443');
    const allowAllFlag = boolFlag(args, 'insecure-allow-all');
    const kubeconfig = stringFlag(args, 'kubeconfig');
    if (!allowAllFlag && kubeconfig === undefined && !boolFlag(args, 'in-cluster'))
      throw new CdiError(
        ErrorCodes.InvalidConfig,
        'one of --kubeconfig, --in-cluster or --insecure-allow-all is required',
      );
    const certPem = await readFlagFile(args, 'tls-cert-file');
    const keyPem = await readFlagFile(args, 'tls-key-file');
    if (!boolFlag(args, 'insecure') && (certPem === undefined || keyPem === undefined))
      throw new CdiError(
        ErrorCodes.InvalidConfig,
        '--tls-cert-file and --tls-key-file are required (or --insecure)',
      );
    let clientCaPem = await readFlagFile(args, 'requestheader-client-ca-file');
    let allowedNames: readonly string[] = [];
    const kc = allowAllFlag ? undefined : loadKubeConfig(kubeconfig);
    if (kc !== undefined && clientCaPem === undefined) {
      // As every aggregated API server: the front proxy's CA from the cluster itself.
      const fromCluster = await readRequestHeaderAuthentication(kc);
      if (fromCluster === undefined)
        ctx.logger.warn(
          'no front-proxy CA (kube-system/extension-apiserver-authentication): aggregated requests will not be authenticated',
        );
      clientCaPem = fromCluster?.clientCaPem;
      allowedNames = fromCluster?.allowedNames ?? [];
    }
    const keyFile = stringFlag(args, 'token-key-file');
    const signingKey =
      keyFile === undefined
        ? (await generateTokenKeys()).privateKey
        : await loadPrivateKey(keyFile);
    const out = stringFlag(args, 'public-key-out');
    if (out !== undefined) await writeFile(out, publicKeyPemOf(signingKey));
    const headers = remoteHeaderAuthenticator({ trustHeaders: allowAllFlag, allowedNames });
    let authenticator: Authenticator = headers;
    let authorizer: Authorizer = allowAll;
    if (kc !== undefined) {
      authenticator = tokenReviewAuthenticator(kc, headers);
      authorizer = subjectAccessReviewAuthorizer(kc);
    }
    const admission = kc === undefined ? undefined : kubeAdmissionDeps(kc, signingKey);
    const pvcDeps = kc === undefined ? undefined : kubePvcMutateDeps(kc);
    const server = await startTokenApiServer({
      ...(certPem === undefined || keyPem === undefined
        ? {}
        : { tls: { certPem, keyPem, ...(clientCaPem === undefined ? {} : { clientCaPem }) } }),
      signingKey,
      webhooks: {
        // Validation is pure; the mutating webhooks need the cluster (SubjectAccessReviews,
        // DataSources, StorageProfiles).
        [DATAVOLUME_VALIDATE_PATH]: (review: unknown) =>
          Promise.resolve(validateDataVolumeReview(review)),
        [DATASOURCE_VALIDATE_PATH]: (review: unknown) =>
          Promise.resolve(validateDataSourceReview(review)),
        [CDICONFIG_VALIDATE_PATH]: (review: unknown) =>
          Promise.resolve(validateCdiConfigReview(review)),
        [STORAGEPROFILE_VALIDATE_PATH]: (review: unknown) =>
          Promise.resolve(validateStorageProfileReview(review)),
        [CDI_VALIDATE_PATH]: (review: unknown) => Promise.resolve(validateCdiReview(review)),
        ...(admission === undefined || pvcDeps === undefined
          ? {}
          : {
              [DATAVOLUME_MUTATE_PATH]: (review: unknown) => admitDataVolume(review, admission),
              [PVC_MUTATE_PATH]: (review: unknown) => mutatePvcReview(review, pvcDeps),
            }),
      },
      authenticator,
      authorizer,
      host: listen.host,
      port: listen.port,
      logger: ctx.logger,
      metrics: processMetricsRegistry(),
    });
    ctx.logger.info('token API listening', { url: server.url });
    await waitForAbort(ctx.signal);
    await server.close();
    return 0;
  } catch (err) {
    ctx.logger.error(errorMessage(err), { code: errorCode(err) });
    ctx.stderr.write(`${errorMessage(err)}\n`);
    return 1;
  }
}
