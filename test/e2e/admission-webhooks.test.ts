// SPDX-License-Identifier: Apache-2.0
/**
 * CDI's validating and PVC webhooks as the API server calls them: `cdi apiserver`'s handlers
 * served over HTTPS in this test and registered from deploy/apiserver/webhook.yaml (each
 * service reference pointed at the test server, with its caBundle). `kubectl apply` of an invalid
 * DataVolume fails with CDI's message, a spec edit is refused while a label edit passes, and a
 * PVC labelled applyStorageProfile gets its modes from the StorageProfile.
 */
import { readFile } from 'node:fs/promises';
import { dump, loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.js';
import { generateTokenKeys } from '../../uploadproxy/protocol/token.js';
import { allowAll, startTokenApiServer } from '../../uploadproxy/apiserver/token-api.js';
import {
  DATAVOLUME_VALIDATE_PATH,
  validateDataVolumeReview,
} from '../../uploadproxy/apiserver/datavolume-validate.js';
import {
  DATASOURCE_VALIDATE_PATH,
  validateDataSourceReview,
} from '../../uploadproxy/apiserver/datasource-validate.js';
import { PVC_MUTATE_PATH, mutatePvcReview } from '../../uploadproxy/apiserver/pvc-mutate.js';
import {
  CDICONFIG_VALIDATE_PATH,
  CDI_VALIDATE_PATH,
  STORAGEPROFILE_VALIDATE_PATH,
  validateCdiConfigReview,
  validateCdiReview,
  validateStorageProfileReview,
} from '../../uploadproxy/apiserver/config-validate.js';
import { kubePvcMutateDeps } from '../../uploadproxy/apiserver/storage-profile-kube.js';
import { createTestTls, type TestTls } from '../helpers/tls.js';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import { kubeConfigFor, kubectl } from '../sandbox/testing.js';

let sandbox: Sandbox;
let tls: TestTls;
let server: { url: string; close(): Promise<void> };

interface Doc {
  kind?: string;
  webhooks?: { name: string; clientConfig: Record<string, unknown>; objectSelector?: unknown }[];
}

/**
 * deploy/apiserver/webhook.yaml with every webhook calling `url` (plus its path) instead, and the
 * webhook `idle` matching nothing.
 */
async function webhookManifests(url: string, caPem: string, idle: string): Promise<string> {
  const text = await readFile(
    new URL('../../deploy/apiserver/webhook.yaml', import.meta.url),
    'utf8',
  );
  const docs = loadAll(text) as Doc[];
  for (const doc of docs)
    for (const hook of doc.webhooks ?? []) {
      if (hook.name === idle) hook.objectSelector = { matchLabels: { never: 'x' } };
      const service = hook.clientConfig['service'] as { path: string };
      hook.clientConfig = {
        url: `${url}${service.path}`,
        caBundle: Buffer.from(caPem).toString('base64'),
      };
    }
  return docs.map((d) => dump(d)).join('---\n');
}

beforeAll(async () => {
  tls = await createTestTls();
  sandbox = await startSandbox();
  const pvcDeps = kubePvcMutateDeps(kubeConfigFor(sandbox));
  server = await startTokenApiServer({
    tls: { certPem: tls.certPem, keyPem: tls.keyPem },
    signingKey: (await generateTokenKeys()).privateKey,
    webhooks: {
      [DATAVOLUME_VALIDATE_PATH]: (r) => Promise.resolve(validateDataVolumeReview(r)),
      [PVC_MUTATE_PATH]: (r) => mutatePvcReview(r, pvcDeps),
      [DATASOURCE_VALIDATE_PATH]: (r) => Promise.resolve(validateDataSourceReview(r)),
      [CDICONFIG_VALIDATE_PATH]: (r) => Promise.resolve(validateCdiConfigReview(r)),
      [STORAGEPROFILE_VALIDATE_PATH]: (r) => Promise.resolve(validateStorageProfileReview(r)),
      [CDI_VALIDATE_PATH]: (r) => Promise.resolve(validateCdiReview(r)),
    },
    authenticator: () => Promise.resolve(undefined),
    authorizer: allowAll,
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ component: 'test', level: 'error' }),
  });
  // The mutating configuration also holds the clone webhook, which this test does not serve:
  // it matches no object here.
  const manifests = await webhookManifests(
    server.url,
    tls.caPem,
    'datavolume-mutate.cdi.kubevirt.io',
  );
  await ok(['apply', '-f', '-'], manifests);
}, 120_000);

afterAll(async () => {
  await sandbox.stop();
  await server.close();
  await tls.cleanup();
});

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await kubectl(sandbox, args, input === undefined ? {} : { input });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

const dataVolume = (name: string, spec: string): string => `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: { name: ${name}, namespace: default }
spec:
${spec}`;

const DENIED = 'admission webhook "datavolume-validate.cdi.kubevirt.io" denied the request: ';

describe('DataVolume validating webhook', () => {
  it.each([
    {
      what: 'no source',
      spec: '  storage: { resources: { requests: { storage: 1Gi } } }\n',
      message: 'Missing Data volume source',
    },
    {
      what: 'two sources',
      spec: "  source: { http: { url: 'http://h/x' }, blank: {} }\n  storage: { resources: { requests: { storage: 1Gi } } }\n",
      // kubectl sends the keys in its own order.
      message: 'Multiple Data volume sources: ',
    },
    {
      what: 'no size',
      spec: '  source: { blank: {} }\n  pvc: { accessModes: [ReadWriteOnce] }\n',
      message: 'PVC size is missing',
    },
    {
      what: 'a bad checksum',
      spec: "  source: { http: { url: 'http://h/x', checksum: 'md5:xyz' } }\n  storage: { resources: { requests: { storage: 1Gi } } }\n",
      message:
        'Invalid checksum format: md5:xyz (want algorithm:hex with md5, sha1, sha256 or sha512)',
    },
    {
      what: 'archive into Block',
      spec: "  source: { http: { url: 'http://h/a.tar' } }\n  contentType: archive\n  storage: { volumeMode: Block, resources: { requests: { storage: 1Gi } } }\n",
      message: 'ContentType Archive cannot have block volumeMode',
    },
  ])('kubectl apply refuses $what with CDI message', async ({ spec, message }) => {
    const r = await kubectl(sandbox, ['apply', '-f', '-'], {
      input: dataVolume('bad', spec),
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${DENIED}${message}`);
    const get = await kubectl(sandbox, ['get', 'dv', 'bad', '-n', 'default']);
    expect(get.code).not.toBe(0);
  });

  it('admits a clone of a claim that does not exist yet', async () => {
    await ok(
      ['apply', '-f', '-'],
      dataVolume(
        'clone-later',
        '  source: { pvc: { namespace: default, name: not-yet } }\n  storage: {}\n',
      ),
    );
  });

  it('refuses a spec edit and admits a label edit', async () => {
    await ok(
      ['apply', '-f', '-'],
      dataVolume(
        'edited',
        "  source: { http: { url: 'http://h/x' } }\n  storage: { resources: { requests: { storage: 1Gi } } }\n",
      ),
    );
    const r = await kubectl(sandbox, [
      'patch',
      'dv',
      'edited',
      '-n',
      'default',
      '--type=merge',
      '-p',
      '{"spec":{"source":{"http":{"url":"http://foo.bar"}}}}',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${DENIED}Cannot update DataVolume Spec`);
    await ok(['label', 'dv', 'edited', '-n', 'default', 'team=disks']);
    expect(
      await ok(['get', 'dv', 'edited', '-n', 'default', '-o', 'jsonpath={.spec.source.http.url}']),
    ).toBe('http://h/x');
  });
});

describe('PVC mutating webhook', () => {
  beforeAll(async () => {
    await ok(
      ['apply', '-f', '-'],
      `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: { name: shared }
provisioner: example.com/shared
---
apiVersion: cdi.kubevirt.io/v1beta1
kind: StorageProfile
metadata: { name: shared }
spec: {}
`,
    );
    await ok([
      'patch',
      'storageprofile',
      'shared',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"storageClass":"shared","claimPropertySets":[{"accessModes":["ReadWriteMany"],"volumeMode":"Block"}]}}',
    ]);
  });

  const claim = (name: string, labelled: boolean): string => `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: ${name}
  namespace: default
${labelled ? "  labels: { cdi.kubevirt.io/applyStorageProfile: 'true' }\n" : ''}spec:
  storageClassName: shared
${labelled ? '  volumeMode: FromStorageProfile\n' : '  accessModes: [ReadWriteOnce]\n'}  resources: { requests: { storage: 1Gi } }
`;

  // The API server defaults volumeMode to Filesystem before admission, so a claim asks for the
  // profile's with FromStorageProfile, as with CDI.
  it('fills the modes of a labelled PVC from its StorageProfile', async () => {
    await ok(['apply', '-f', '-'], claim('rendered', true));
    expect(await ok(['get', 'storageprofile', 'shared', '-o', 'jsonpath={.status}'])).toContain(
      'ReadWriteMany',
    );
    const spec = JSON.parse(
      await ok(['get', 'pvc', 'rendered', '-n', 'default', '-o', 'jsonpath={.spec}']),
    ) as { accessModes?: string[]; volumeMode?: string };
    expect(spec.accessModes).toEqual(['ReadWriteMany']);
    expect(spec.volumeMode).toBe('Block');
  });

  it('leaves an unlabelled PVC as it was written', async () => {
    await ok(['apply', '-f', '-'], claim('plain', false));
    const spec = JSON.parse(
      await ok(['get', 'pvc', 'plain', '-n', 'default', '-o', 'jsonpath={.spec}']),
    ) as { accessModes?: string[]; volumeMode?: string };
    expect(spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(spec.volumeMode).not.toBe('Block');
  });
});

describe('DataSource validating webhook', () => {
  it('kubectl apply refuses a DataSource pointing at itself, and admits one pointing elsewhere', async () => {
    const ds = (name: string, target: string): string => `apiVersion: cdi.kubevirt.io/v1beta1
kind: DataSource
metadata: { name: ${name}, namespace: default }
spec: { source: { dataSource: { name: ${target} } } }
`;
    const r = await kubectl(sandbox, ['apply', '-f', '-'], { input: ds('loop', 'loop') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      'admission webhook "datasource-validate.cdi.kubevirt.io" denied the request: DataSource cannot point to itself',
    );
    await ok(['apply', '-f', '-'], ds('latest', 'fedora-40'));
  });
});

describe('CDIConfig, StorageProfile and CDI validating webhooks', () => {
  const denied = (hook: string): string =>
    `admission webhook "${hook}-validate.cdi.kubevirt.io" denied the request: `;

  it.each([
    {
      what: 'a StorageProfile with an illegal access mode',
      hook: 'storageprofile',
      manifest: `apiVersion: cdi.kubevirt.io/v1beta1
kind: StorageProfile
metadata: { name: odd }
spec: { claimPropertySets: [{ accessModes: [ReadWriteSometimes], volumeMode: Block }] }
`,
      message: 'spec.claimPropertySets[0].accessModes: Invalid value: "array": Illegal AccessMode',
    },
    {
      what: 'a StorageProfile with an unknown clone strategy',
      hook: 'storageprofile',
      manifest: `apiVersion: cdi.kubevirt.io/v1beta1
kind: StorageProfile
metadata: { name: odd }
spec: { cloneStrategy: teleport }
`,
      message:
        'spec.cloneStrategy: Unsupported value: "teleport": supported values: "copy", "snapshot", "csi-clone"',
    },
    {
      what: 'a CDI resource whose certConfig renews before it was issued',
      hook: 'cdi',
      manifest: `apiVersion: cdi.kubevirt.io/v1beta1
kind: CDI
metadata: { name: cdi }
spec: { certConfig: { server: { duration: 12h, renewBefore: 24h } } }
`,
      message: 'spec.certConfig.server.renewBefore (24h) must be shorter than duration (12h)',
    },
    {
      what: 'a CDIConfig whose pod memory limit is not a quantity',
      hook: 'cdiconfig',
      manifest: `apiVersion: cdi.kubevirt.io/v1beta1
kind: CDIConfig
metadata: { name: config }
spec: { podResourceRequirements: { limits: { memory: lots } } }
`,
      message: 'spec.podResourceRequirements.limits.memory: Invalid value: "lots"',
    },
  ])('kubectl apply refuses $what', async ({ hook, manifest, message }) => {
    const r = await kubectl(sandbox, ['apply', '-f', '-'], { input: manifest });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${denied(hook)}${message}`);
  });

  it('admits a valid CDI resource, refuses a bad certConfig edit, admits a label edit', async () => {
    await ok(
      ['apply', '-f', '-'],
      `apiVersion: cdi.kubevirt.io/v1beta1
kind: CDI
metadata: { name: cdi }
spec:
  imagePullPolicy: IfNotPresent
  certConfig: { ca: { duration: 48h, renewBefore: 24h }, server: { duration: 24h, renewBefore: 12h } }
  config: { filesystemOverhead: { global: '0.055' }, podResourceRequirements: { limits: { cpu: 750m, memory: 600M } } }
`,
    );
    const r = await kubectl(sandbox, [
      'patch',
      'cdi',
      'cdi',
      '--type=merge',
      '-p',
      '{"spec":{"certConfig":{"client":{"duration":"1h","renewBefore":"0s"}}}}',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      `${denied('cdi')}spec.certConfig.client.renewBefore must be positive, got "0s"`,
    );
    await ok(['label', 'cdi', 'cdi', 'team=platform']);
  });
});
