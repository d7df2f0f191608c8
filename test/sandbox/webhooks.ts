// SPDX-License-Identifier: Apache-2.0
/**
 * Admission webhooks, called as kube-apiserver calls them: every MutatingWebhookConfiguration's
 * webhooks (configurations by name, webhooks in order) whose rules (operations, apiGroups,
 * apiVersions, resources with subresources, scope), namespaceSelector and objectSelector match
 * get an AdmissionReview v1 over HTTPS, verified with the webhook's `caBundle` and addressed by
 * `clientConfig.url` or `clientConfig.service` (a Service's clusterIP, or an `ExternalName`
 * Service's `externalName` for a server outside the sandbox, as for APIServices). The JSON
 * patches they return are applied in order; then every matching validating webhook sees the
 * result. `failurePolicy` (Fail by default) decides what a call that fails does,
 * `timeoutSeconds` (10 by default) bounds it, and a dry run reaches only webhooks whose
 * `sideEffects` are None or NoneOnDryRun. The requester's userInfo is in the review.
 */
import { randomUUID } from 'node:crypto';
import { request } from 'node:https';
import { isIP } from 'node:net';
import { ApiStatusError, StatusReasons, type StatusReason } from './api-errors.js';
import type { ObjectApi } from './object-api.js';
import { getPath, isRecord, str, type KObject } from './object.js';
import { jsonPatch } from './patch.js';
import type { ResourceType } from './resources.js';
import { parseLabelSelector } from './selectors.js';
import type { UserInfo } from './tokens.js';

/** An admission request's operation, as webhooks name it. */
export type Operation = 'CREATE' | 'UPDATE' | 'DELETE';

/** What is being admitted. */
export interface AdmissionAttributes {
  readonly operation: Operation;
  readonly type: ResourceType;
  /** The version of the request's URL. */
  readonly version: string;
  readonly subresource?: string;
  readonly namespace: string;
  readonly name: string;
  readonly object: KObject | undefined;
  readonly oldObject: KObject | undefined;
  readonly user: UserInfo;
  readonly dryRun: boolean;
}

const ADMISSION = 'admissionregistration.k8s.io/v1';
const DEFAULT_TIMEOUT_S = 10;

const strs = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

function listMatches(list: readonly string[], value: string): boolean {
  return list.includes('*') || list.includes(value);
}

function resourceMatches(
  patterns: readonly string[],
  resource: string,
  sub: string | undefined,
): boolean {
  return patterns.some((p) => {
    const [res = '', psub] = p.split('/');
    if (sub === undefined) return psub === undefined && (res === '*' || res === resource);
    return (res === '*' || res === resource) && (psub === '*' || psub === sub);
  });
}

function ruleMatches(rule: unknown, a: AdmissionAttributes): boolean {
  if (!isRecord(rule)) return false;
  const scope = str(rule['scope'], '*');
  if (scope === 'Cluster' && a.type.namespaced) return false;
  if (scope === 'Namespaced' && !a.type.namespaced) return false;
  return (
    listMatches(strs(rule['operations']), a.operation) &&
    listMatches(strs(rule['apiGroups']), a.type.group) &&
    listMatches(strs(rule['apiVersions']), a.version) &&
    resourceMatches(strs(rule['resources']), a.type.plural, a.subresource)
  );
}

/** A LabelSelector object as the text form selectors.ts parses. */
function selectorText(selector: Record<string, unknown>): string {
  const parts: string[] = [];
  const labels = selector['matchLabels'];
  if (isRecord(labels)) for (const [k, v] of Object.entries(labels)) parts.push(`${k}=${str(v)}`);
  for (const e of Array.isArray(selector['matchExpressions']) ? selector['matchExpressions'] : []) {
    if (!isRecord(e)) continue;
    const key = str(e['key']);
    const values = strs(e['values']).join(',');
    if (e['operator'] === 'In') parts.push(`${key} in (${values})`);
    else if (e['operator'] === 'NotIn') parts.push(`${key} notin (${values})`);
    else if (e['operator'] === 'Exists') parts.push(key);
    else if (e['operator'] === 'DoesNotExist') parts.push(`!${key}`);
  }
  return parts.join(',');
}

function selects(selector: unknown, obj: KObject | undefined): boolean {
  if (!isRecord(selector)) return true;
  return parseLabelSelector(selectorText(selector))(
    obj ?? { apiVersion: '', kind: '', metadata: {} },
  );
}

/** Calls the webhooks of the configurations in the store. */
export class AdmissionWebhooks {
  constructor(readonly api: ObjectApi) {}

  /** Whether any webhook configuration exists (no work at all otherwise). */
  configured(): boolean {
    return (
      this.#webhooks('MutatingWebhookConfiguration').length > 0 ||
      this.#webhooks('ValidatingWebhookConfiguration').length > 0
    );
  }

  #webhooks(kind: string): Record<string, unknown>[] {
    const type = this.api.typeOf(ADMISSION, kind);
    if (type === undefined) return [];
    return this.api
      .list(type, undefined)
      .items.sort((x, y) => (x.metadata.name ?? '').localeCompare(y.metadata.name ?? ''))
      .flatMap((c) => (Array.isArray(c['webhooks']) ? c['webhooks'].filter(isRecord) : []));
  }

  #matches(hook: Record<string, unknown>, a: AdmissionAttributes): boolean {
    if (!(Array.isArray(hook['rules']) && hook['rules'].some((r) => ruleMatches(r, a))))
      return false;
    // The namespace's labels decide for namespaced objects (and a Namespace its own labels).
    if (a.type.namespaced || (a.type.group === '' && a.type.plural === 'namespaces')) {
      const nsType = this.api.typeOf('v1', 'Namespace');
      const ns =
        a.type.plural === 'namespaces'
          ? (a.object ?? a.oldObject)
          : nsType === undefined
            ? undefined
            : this.api.find(nsType, '', a.namespace);
      if (!selects(hook['namespaceSelector'], ns)) return false;
    }
    // Either the new or the old object may match (only the one that exists counts).
    return (
      (a.object !== undefined && selects(hook['objectSelector'], a.object)) ||
      (a.oldObject !== undefined && selects(hook['objectSelector'], a.oldObject))
    );
  }

  /** Runs the mutating webhooks; returns the object they leave (or the one given). */
  async mutate(a: AdmissionAttributes): Promise<KObject | undefined> {
    let object = a.object;
    for (const hook of this.#webhooks('MutatingWebhookConfiguration')) {
      const current = { ...a, object };
      if (!this.#matches(hook, current)) continue;
      const response = await this.#call(hook, current);
      if (response === undefined) continue;
      const patch = response['patch'];
      if (typeof patch === 'string' && object !== undefined) {
        if (response['patchType'] !== 'JSONPatch')
          throw internal(hook, `unsupported patch type ${str(response['patchType'])}`);
        object = jsonPatch(
          object,
          JSON.parse(Buffer.from(patch, 'base64').toString('utf8')),
        ) as KObject;
      }
    }
    return object;
  }

  /** Runs the validating webhooks; throws the first denial. */
  async validate(a: AdmissionAttributes): Promise<void> {
    const hooks = this.#webhooks('ValidatingWebhookConfiguration').filter((h) =>
      this.#matches(h, a),
    );
    await Promise.all(hooks.map((h) => this.#call(h, a)));
  }

  /** One call: the response when allowed, undefined when ignored; throws a denial or failure. */
  async #call(
    hook: Record<string, unknown>,
    a: AdmissionAttributes,
  ): Promise<Record<string, unknown> | undefined> {
    const name = str(hook['name']);
    const sideEffects = str(hook['sideEffects'], 'Unknown');
    if (a.dryRun && sideEffects !== 'None' && sideEffects !== 'NoneOnDryRun') {
      throw new ApiStatusError(
        400,
        StatusReasons.BadRequest,
        `admission webhook "${name}" has side effects and does not support dry run`,
      );
    }
    if (!strs(hook['admissionReviewVersions']).includes('v1'))
      throw internal(hook, 'the webhook does not accept AdmissionReview v1');
    const uid = randomUUID();
    let response: Record<string, unknown>;
    try {
      const reply = await this.#post(hook, review(uid, a));
      const r = getPath(reply, ['response']);
      if (!isRecord(r)) throw new Error('the response has no response field');
      if (r['uid'] !== uid)
        throw new Error(`expected response.uid="${uid}", got "${str(r['uid'])}"`);
      response = r;
    } catch (err) {
      if (str(hook['failurePolicy'], 'Fail') === 'Ignore') return undefined;
      throw internal(hook, err instanceof Error ? err.message : String(err));
    }
    if (response['allowed'] !== true) throw denial(name, response['status']);
    return response;
  }

  async #post(hook: Record<string, unknown>, body: unknown): Promise<unknown> {
    const cc = isRecord(hook['clientConfig']) ? hook['clientConfig'] : {};
    const target = this.#target(cc);
    const timeoutMs = Number(hook['timeoutSeconds'] ?? DEFAULT_TIMEOUT_S) * 1000;
    const text = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        target.url,
        {
          method: 'POST',
          headers: {
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(text),
          },
          ...(target.ca === undefined ? {} : { ca: target.ca }),
          // SNI carries host names only; an IP is checked against the certificate's IP SANs.
          ...(isIP(target.servername) === 0 ? { servername: target.servername } : {}),
          ...(target.host === undefined ? {} : { host: target.host }),
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            if ((res.statusCode ?? 500) >= 300) {
              reject(new Error(`the server responded with ${res.statusCode ?? 0}`));
              return;
            }
            try {
              resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('context deadline exceeded')));
      req.on('error', reject);
      req.end(text);
    });
  }

  #target(cc: Record<string, unknown>): {
    url: string;
    servername: string;
    ca?: string;
    host?: string;
  } {
    const ca =
      typeof cc['caBundle'] === 'string'
        ? Buffer.from(cc['caBundle'], 'base64').toString('utf8')
        : undefined;
    if (typeof cc['url'] === 'string') {
      return {
        url: cc['url'],
        servername: new URL(cc['url']).hostname,
        ...(ca === undefined ? {} : { ca }),
      };
    }
    const svc = isRecord(cc['service']) ? cc['service'] : {};
    const ns = str(svc['namespace']);
    const name = str(svc['name']);
    const type = this.api.typeOf('v1', 'Service');
    const service = type === undefined ? undefined : this.api.find(type, ns, name);
    if (service === undefined) throw new Error(`service "${name}" not found`);
    const external = getPath(service, ['spec', 'externalName']);
    const host =
      typeof external === 'string' ? external : str(getPath(service, ['spec', 'clusterIP']));
    const port = typeof svc['port'] === 'number' ? svc['port'] : 443;
    return {
      url: `https://${host}:${port}${str(svc['path'], '/')}`,
      servername: `${name}.${ns}.svc`,
      ...(ca === undefined ? {} : { ca }),
    };
  }
}

function review(uid: string, a: AdmissionAttributes): Record<string, unknown> {
  const gvk = { group: a.type.group, version: a.version, kind: a.type.kind };
  const gvr = { group: a.type.group, version: a.version, resource: a.type.plural };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: gvk,
      resource: gvr,
      ...(a.subresource === undefined ? {} : { subResource: a.subresource }),
      requestKind: gvk,
      requestResource: gvr,
      ...(a.subresource === undefined ? {} : { requestSubResource: a.subresource }),
      name: a.name,
      ...(a.type.namespaced ? { namespace: a.namespace } : {}),
      operation: a.operation,
      userInfo: {
        username: a.user.username,
        ...(a.user.uid === undefined ? {} : { uid: a.user.uid }),
        groups: [...a.user.groups],
      },
      object: a.object ?? null,
      oldObject: a.oldObject ?? null,
      dryRun: a.dryRun,
    },
  };
}

function internal(hook: Record<string, unknown>, why: string): ApiStatusError {
  return new ApiStatusError(
    500,
    StatusReasons.InternalError,
    `Internal error occurred: failed calling webhook "${str(hook['name'])}": ${why}`,
  );
}

/** kube's denial: code ≥ 400 (400 by default), the webhook's message after who denied. */
function denial(name: string, status: unknown): ApiStatusError {
  const s = isRecord(status) ? status : {};
  const code = typeof s['code'] === 'number' && s['code'] >= 400 ? s['code'] : 400;
  const deniedBy = `admission webhook "${name}" denied the request`;
  const message = str(s['message']);
  const reason = str(s['reason']);
  const text =
    message !== ''
      ? `${deniedBy}: ${message}`
      : reason !== ''
        ? `${deniedBy}: ${reason}`
        : `${deniedBy} without explanation`;
  return new ApiStatusError(code, reason as StatusReason, text);
}
