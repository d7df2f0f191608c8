// SPDX-License-Identifier: Apache-2.0
/**
 * End to end: CDIConfig `status.uploadProxyURL` found as CDI's config controller finds it, with
 * kubectl against the sandbox: nothing without an override, an Ingress or a Route; the admitted
 * host of a Route (its API registered from a CRD, as on OpenShift) to `cdi-uploadproxy`; an
 * Ingress to it ahead of the Route; the override ahead of both; back to the Route when the
 * Ingress goes.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  CDI_CONFIG_NAME,
  CDI_GROUP,
  CDI_VERSION,
  type CdiConfig,
} from '../../common/api/datavolume.js';
import { kubectl, waitForObject } from '../sandbox/testing.js';
import { CDI_NAMESPACE } from '../sandbox/upload-wiring.js';
import { apply, startControllerEnv, type ControllerEnv } from './controller-harness.js';

let env: ControllerEnv;

const ROUTE_CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: routes.route.openshift.io
spec:
  group: route.openshift.io
  scope: Namespaced
  names: {plural: routes, singular: route, kind: Route, listKind: RouteList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`;

const ROUTE = `apiVersion: route.openshift.io/v1
kind: Route
metadata: {name: cdi-uploadproxy, namespace: ${CDI_NAMESPACE}}
spec:
  to: {kind: Service, name: cdi-uploadproxy}
  tls: {termination: passthrough}
status:
  ingress: [{host: cdi-uploadproxy-cdi.apps.example.test}]
`;

const INGRESS = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: upload, namespace: ${CDI_NAMESPACE}}
spec:
  rules:
    - host: web.example.test
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
    - host: upload.example.test
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: cdi-uploadproxy, port: {number: 443}}}
`;

/** Waits until the controller has written a status whose URL is `want`. */
function waitForUrl(want: string | undefined): Promise<CdiConfig> {
  return waitForObject<KubernetesObject>(env.kc, {
    path: `/apis/${CDI_GROUP}/${CDI_VERSION}/cdiconfigs`,
    name: CDI_CONFIG_NAME,
    until: (o) => {
      const status = (o as CdiConfig).status;
      return status?.filesystemOverhead !== undefined && status.uploadProxyURL === want;
    },
    timeoutMs: 30_000,
  }) as Promise<CdiConfig>;
}

async function ok(args: string[]): Promise<string> {
  const r = await kubectl(env.sandbox, args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  env = await startControllerEnv();
});

afterAll(async () => {
  await env?.stop();
});

describe('CDIConfig status.uploadProxyURL', () => {
  it('is unset with no override, Ingress or Route', async () => {
    const config = await waitForUrl(undefined);
    expect(config.status).not.toHaveProperty('uploadProxyURL');
  });

  it('comes from the admitted host of a Route to cdi-uploadproxy', async () => {
    await apply(env, ROUTE_CRD);
    await apply(env, ROUTE);
    await waitForUrl('cdi-uploadproxy-cdi.apps.example.test');
  });

  it('comes from an Ingress rule to cdi-uploadproxy ahead of the Route', async () => {
    await apply(env, INGRESS);
    expect(await ok(['get', 'ingress', '-n', CDI_NAMESPACE, 'upload', '-o', 'name'])).toBe(
      'ingress.networking.k8s.io/upload\n',
    );
    await waitForUrl('upload.example.test');
  });

  it('comes from uploadProxyURLOverride ahead of both, then from them again', async () => {
    const patch = (value: string | null): Promise<string> =>
      ok([
        'patch',
        'cdiconfig',
        CDI_CONFIG_NAME,
        '--type',
        'merge',
        '-p',
        JSON.stringify({ spec: { uploadProxyURLOverride: value } }),
      ]);
    await patch('https://override.example.test');
    await waitForUrl('https://override.example.test');
    await patch(null);
    await waitForUrl('upload.example.test');
  });

  it('falls back to the Route when the Ingress goes, and to nothing when the Route goes', async () => {
    await ok(['delete', 'ingress', '-n', CDI_NAMESPACE, 'upload']);
    await waitForUrl('cdi-uploadproxy-cdi.apps.example.test');
    await ok(['delete', 'route.route.openshift.io', '-n', CDI_NAMESPACE, 'cdi-uploadproxy']);
    await waitForUrl(undefined);
  });
});
