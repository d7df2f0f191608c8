// SPDX-License-Identifier: Apache-2.0
/**
 * CDI's DataVolume mutating webhook (`/datavolume-mutate`, AdmissionReview v1): for a DataVolume
 * that clones from another namespace (`source.pvc` there, or `sourceRef` to a DataSource whose
 * claim is there), the requesting user must be allowed `create` on `datavolumes/source` (or on
 * `pods`) in the source namespace, asked with SubjectAccessReviews for the request's userInfo
 * (CDI `AuthorizeUser`, `CanUserClonePVC`). Allowed on create: a JSON patch adds the clone token
 * (`cdi.kubevirt.io/storage.clone.token`) naming source and target, signed with the API server's
 * key. Denied: 422 with CDI's message "User X has insufficient permissions in clone source
 * namespace Y". Everything else is allowed unchanged.
 *
 * The handler is transport-free ({@link admitDataVolume}: review in, review out) so the API
 * server's HTTPS route and the tests call the same code.
 */
import type { CryptoKey } from 'jose';
import { CLONE_TOKEN_ANNOTATION, signCloneToken } from '../../common/clone-token.js';
import { errorMessage } from '../../common/errors.js';
import type { RequestUser } from './token-api.js';

/** The path CDI registers the webhook under. */
export const DATAVOLUME_MUTATE_PATH = '/datavolume-mutate';
/** CDI's subresource for clone permission. */
export const CLONE_SOURCE_SUBRESOURCE = 'source';

/** The resource attributes of one SubjectAccessReview. */
export interface ResourceAttributes {
  readonly namespace: string;
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly name: string;
}

/** What the handler needs from the cluster. */
export interface AdmissionDeps {
  /** Creates a SubjectAccessReview for `user` and answers its status. */
  accessReview(
    user: RequestUser,
    attributes: ResourceAttributes,
  ): Promise<{ allowed: boolean; reason?: string }>;
  /** The DataSource's `spec.source.pvc`, undefined when the DataSource does not exist. */
  dataSourceClaim(
    namespace: string,
    name: string,
  ): Promise<{ readonly found: boolean; readonly pvc?: { namespace?: string; name?: string } }>;
  readonly signingKey: CryptoKey;
  /** Seconds since the epoch (tests). */
  readonly now?: () => number;
}

/** An AdmissionReview's response part. */
export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  status?: {
    code: number;
    message: string;
    reason?: string;
    details?: { causes: { type: string; message: string; field: string }[] };
  };
}

type Json = Record<string, unknown>;

function rec(v: unknown): Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function userOf(request: Json): RequestUser {
  const info = rec(request['userInfo']);
  const groups = Array.isArray(info['groups']) ? info['groups'].map(str) : [];
  const extra: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(rec(info['extra'])))
    if (Array.isArray(v)) extra[k] = v.map(str);
  return {
    name: str(info['username']),
    groups,
    ...(str(info['uid']) === '' ? {} : { uid: str(info['uid']) }),
    ...(Object.keys(extra).length === 0 ? {} : { extra }),
  };
}

/** Where a DataVolume clones from, or undefined when it does not clone a claim. */
async function cloneSourceOf(
  dv: Json,
  targetNamespace: string,
  deps: AdmissionDeps,
): Promise<{ namespace: string; name: string } | undefined> {
  const spec = rec(dv['spec']);
  const pvc = rec(rec(spec['source'])['pvc']);
  if (str(pvc['name']) !== '')
    return { namespace: str(pvc['namespace']) || targetNamespace, name: str(pvc['name']) };
  const ref = rec(spec['sourceRef']);
  if (ref['kind'] !== 'DataSource' || str(ref['name']) === '') return undefined;
  const dsNamespace = str(ref['namespace']) || targetNamespace;
  const ds = await deps.dataSourceClaim(dsNamespace, str(ref['name']));
  if (!ds.found) throw new Error(`datasources.cdi.kubevirt.io "${str(ref['name'])}" not found`);
  if (ds.pvc === undefined || (ds.pvc.name ?? '') === '') return undefined;
  return { namespace: ds.pvc.namespace || dsNamespace, name: ds.pvc.name ?? '' };
}

/** CDI `getResourceAttributesPvc`: either permission is enough. */
function attributesFor(namespace: string, name: string): ResourceAttributes[] {
  return [
    {
      namespace,
      verb: 'create',
      group: 'cdi.kubevirt.io',
      resource: 'datavolumes',
      subresource: CLONE_SOURCE_SUBRESOURCE,
      name,
    },
    { namespace, verb: 'create', group: '', resource: 'pods', name },
  ];
}

function patchOf(dv: Json, token: string): string {
  const meta = rec(dv['metadata']);
  const ops =
    meta['annotations'] === undefined
      ? [{ op: 'add', path: '/metadata/annotations', value: { [CLONE_TOKEN_ANNOTATION]: token } }]
      : [
          {
            op: 'add',
            // RFC 6901: "/" in a key is written "~1".
            path: `/metadata/annotations/${CLONE_TOKEN_ANNOTATION.replace(/~/g, '~0').replace(/\//g, '~1')}`,
            value: token,
          },
        ];
  return Buffer.from(JSON.stringify(ops)).toString('base64');
}

/** Answers one AdmissionReview (v1) body with the review to send back. */
export async function admitDataVolume(review: unknown, deps: AdmissionDeps): Promise<Json> {
  const request = rec(rec(review)['request']);
  const uid = str(request['uid']);
  const answer = (response: Omit<AdmissionResponse, 'uid'>): Json => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid, ...response },
  });
  const resource = rec(request['resource']);
  if (resource['group'] !== 'cdi.kubevirt.io' || resource['resource'] !== 'datavolumes')
    return answer({
      allowed: false,
      status: {
        code: 400,
        message: `resource is ${str(resource['resource'])} but request is: datavolumes`,
      },
    });
  const dv = rec(request['object']);
  const meta = rec(dv['metadata']);
  if (meta['deletionTimestamp'] !== undefined && meta['deletionTimestamp'] !== null)
    return answer({ allowed: true });
  const targetNamespace = str(meta['namespace']) || str(request['namespace']);
  const targetName = str(meta['name']) || str(request['name']);
  const user = userOf(request);
  try {
    const source = await cloneSourceOf(dv, targetNamespace, deps);
    if (source === undefined || source.namespace === targetNamespace)
      return answer({ allowed: true });
    let allowed = false;
    for (const attributes of attributesFor(source.namespace, source.name)) {
      if ((await deps.accessReview(user, attributes)).allowed) {
        allowed = true;
        break;
      }
    }
    if (!allowed) {
      const message = `User ${user.name} has insufficient permissions in clone source namespace ${source.namespace}`;
      return answer({
        allowed: false,
        status: {
          code: 422,
          message,
          details: {
            causes: [{ type: 'FieldValueInvalid', message, field: 'spec.source.PVC.namespace' }],
          },
        },
      });
    }
    // CDI adds the token at create time only; an update keeps the one given then.
    if (request['operation'] !== 'CREATE') return answer({ allowed: true });
    const token = await signCloneToken(
      deps.signingKey,
      {
        sourceNamespace: source.namespace,
        sourceName: source.name,
        targetNamespace,
        targetName,
      },
      deps.now?.(),
    );
    return answer({ allowed: true, patchType: 'JSONPatch', patch: patchOf(dv, token) });
  } catch (err) {
    return answer({ allowed: false, status: { code: 400, message: errorMessage(err) } });
  }
}
