// SPDX-License-Identifier: Apache-2.0
/**
 * Admission webhooks, served by a small HTTPS server in this test: mutating webhooks patch in
 * order and by their selectors, validating webhooks deny with kube's message, the review carries
 * the requester's userInfo, `caBundle` is checked, and `failurePolicy` decides a failing call.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTls, type TestTls } from '../helpers/tls.js';
import { freePort } from '../helpers/free-port.js';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubectl } from '../sandbox/testing.js';

interface Review {
  readonly request: {
    readonly uid: string;
    readonly operation: string;
    readonly userInfo: { readonly username: string };
    readonly object: {
      readonly metadata: { labels?: Record<string, string> };
      data?: Record<string, string>;
    };
  };
}

let sandbox: Sandbox;
let tls: TestTls;
let otherCa: TestTls;
let server: Server;
let port: number;
const seen: { path: string; review: Review }[] = [];

/** The webhook paths: each answers one way. */
function answer(path: string, review: Review): Record<string, unknown> {
  const { uid, object } = review.request;
  const patch = (ops: unknown[]): Record<string, unknown> => ({
    uid,
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(ops)).toString('base64'),
  });
  const labels = object.metadata.labels ?? {};
  switch (path) {
    case '/first':
      return patch([
        ...(object.metadata.labels === undefined
          ? [{ op: 'add', path: '/metadata/labels', value: {} }]
          : []),
        { op: 'add', path: '/metadata/labels/first', value: 'yes' },
      ]);
    case '/second':
      // Sees what the first webhook did: mutations apply in order.
      return patch([
        { op: 'add', path: '/metadata/labels/second-saw-first', value: labels['first'] ?? 'no' },
      ]);
    case '/deny':
      return object.data?.['bad'] === undefined
        ? { uid, allowed: true }
        : { uid, allowed: false, status: { code: 403, message: 'the key "bad" is not allowed' } };
    default:
      return { uid, allowed: true };
  }
}

beforeAll(async () => {
  [tls, otherCa] = await Promise.all([
    createTestTls({ altNames: ['IP:127.0.0.1', 'DNS:hooks.webhooks.svc'] }),
    createTestTls({ caName: 'unrelated-ca' }),
  ]);
  server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Review;
      const path = req.url ?? '/';
      seen.push({ path, review });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: answer(path, review),
        }),
      );
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  port = (server.address() as AddressInfo).port;
  sandbox = await startSandbox();
  const ca = Buffer.from(tls.caPem).toString('base64');
  const hook = (name: string, path: string, extra = ''): string => `  - name: ${name}
    admissionReviewVersions: [v1]
    sideEffects: None
    clientConfig:
      url: https://127.0.0.1:${port}${path}
      caBundle: ${ca}
    rules:
      - { operations: [CREATE, UPDATE], apiGroups: [''], apiVersions: [v1], resources: [configmaps], scope: Namespaced }
    namespaceSelector: { matchLabels: { webhooks: "on" } }
${extra}`;
  await ok(
    ['apply', '-f', '-'],
    `apiVersion: v1
kind: Namespace
metadata: { name: hooked, labels: { webhooks: "on" } }
---
apiVersion: v1
kind: Namespace
metadata: { name: plain }
---
apiVersion: v1
kind: Namespace
metadata: { name: webhooks }
---
apiVersion: v1
kind: Service
metadata: { name: hooks, namespace: webhooks }
spec: { type: ExternalName, externalName: 127.0.0.1 }
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: { name: a-first }
webhooks:
${hook('first.example.com', '/first', '    objectSelector: { matchExpressions: [{ key: skip, operator: DoesNotExist }] }\n')}---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: { name: b-second }
webhooks:
${hook('second.example.com', '/second')}---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: { name: deny-bad }
webhooks:
  - name: deny.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    clientConfig:
      service: { namespace: webhooks, name: hooks, port: ${port}, path: /deny }
      caBundle: ${ca}
    rules:
      - { operations: [CREATE, UPDATE], apiGroups: [''], apiVersions: [v1], resources: [configmaps] }
`,
  );
});

afterAll(async () => {
  await sandbox.stop();
  server.close();
  await Promise.all([tls.cleanup(), otherCa.cleanup()]);
});

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await kubectl(sandbox, args, input === undefined ? {} : { input });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

const labelsOf = async (ns: string, name: string): Promise<Record<string, string>> =>
  JSON.parse(
    (await ok(['get', 'cm', name, '-n', ns, '-o', 'jsonpath={.metadata.labels}'])) || '{}',
  ) as Record<string, string>;

describe('admission webhooks', () => {
  it('applies mutating patches in order, with the requester in the review', async () => {
    await ok(['create', 'configmap', 'one', '-n', 'hooked', '--from-literal=a=b']);
    expect(await labelsOf('hooked', 'one')).toEqual({ first: 'yes', 'second-saw-first': 'yes' });
    const reviews = seen.filter((s) => s.path === '/first');
    expect(reviews.at(-1)?.review.request.operation).toBe('CREATE');
    expect(reviews.at(-1)?.review.request.userInfo.username).toBe('sandbox-admin');
  });

  it('honours namespaceSelector and objectSelector', async () => {
    await ok(['create', 'configmap', 'two', '-n', 'plain', '--from-literal=a=b']);
    expect(await labelsOf('plain', 'two')).toEqual({});
    await ok(
      ['apply', '-f', '-'],
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: three, namespace: hooked, labels: { skip: "1" } }\n',
    );
    expect(await labelsOf('hooked', 'three')).toEqual({ skip: '1', 'second-saw-first': 'no' });
  });

  it('denies through a validating webhook behind a Service, with kube message and code', async () => {
    const r = await kubectl(sandbox, [
      'create',
      'configmap',
      'four',
      '-n',
      'plain',
      '--from-literal=bad=1',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toBe(
      'error: failed to create configmap: admission webhook "deny.example.com" denied the request: the key "bad" is not allowed',
    );
    const patched = await kubectl(sandbox, [
      'patch',
      'cm',
      'two',
      '-n',
      'plain',
      '--type=merge',
      '-p',
      '{"data":{"bad":"x"}}',
    ]);
    expect(patched.stderr).toContain(
      'Error from server: admission webhook "deny.example.com" denied the request: the key "bad" is not allowed',
    );
    expect(await ok(['get', 'cm', 'two', '-n', 'plain', '-o', 'jsonpath={.data}'])).toBe(
      '{"a":"b"}',
    );
  });

  it.each([
    { policy: 'Fail', created: false },
    { policy: 'Ignore', created: true },
  ])(
    'with failurePolicy $policy, an unreachable or untrusted webhook ($policy)',
    async ({ policy, created }) => {
      const closed = await freePort();
      const wrongCa = Buffer.from(otherCa.caPem).toString('base64');
      const name = `failing-${policy.toLowerCase()}`;
      await ok(
        ['apply', '-f', '-'],
        `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: { name: ${name} }
webhooks:
  - name: down.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: ${policy}
    timeoutSeconds: 2
    clientConfig: { url: "https://127.0.0.1:${closed}/", caBundle: ${Buffer.from(tls.caPem).toString('base64')} }
    rules: [{ operations: [CREATE], apiGroups: [''], apiVersions: [v1], resources: [secrets] }]
  - name: untrusted.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: ${policy}
    clientConfig: { url: "https://127.0.0.1:${port}/", caBundle: ${wrongCa} }
    rules: [{ operations: [CREATE], apiGroups: [''], apiVersions: [v1], resources: [secrets] }]
`,
      );
      const r = await kubectl(sandbox, [
        'create',
        'secret',
        'generic',
        `s-${policy.toLowerCase()}`,
        '-n',
        'plain',
      ]);
      if (created) expect(r.code).toBe(0);
      else {
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain('Internal error occurred: failed calling webhook "');
      }
      await ok(['delete', 'validatingwebhookconfiguration', name]);
    },
  );
});
