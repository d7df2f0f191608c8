// SPDX-License-Identifier: Apache-2.0
/**
 * The upload protocol shared by the token API, the proxy, the server and the client: the token API's
 * group, the upload endpoints (CDI `pkg/common/common.go`) and our headers.
 */

/** How an upload path asks the bytes to be handled. */
export interface UploadMode {
  /** Answer once the bytes are received; processing continues. */
  readonly async: boolean;
  /** The body is `multipart/form-data` with the image in the part `file`. */
  readonly form: boolean;
  /** The body is a (compressed) tar extracted into the volume. */
  readonly archive: boolean;
}

const MODES: Readonly<Record<string, UploadMode>> = {
  upload: { async: false, form: false, archive: false },
  'upload-async': { async: true, form: false, archive: false },
  'upload-form': { async: false, form: true, archive: false },
  'upload-form-async': { async: true, form: true, archive: false },
  'upload-archive': { async: false, form: false, archive: true },
};

/** The liveness path. */
export const HEALTHZ_PATH = '/healthz';
/** The upload server's progress metric (the controller scrapes it). */
export const METRICS_PATH = '/metrics';

/** Every upload path, v1beta1 first, then the v1alpha1 aliases. */
export const UPLOAD_PATHS: readonly string[] = ['v1beta1', 'v1alpha1'].flatMap((v) =>
  Object.keys(MODES).map((m) => `/${v}/${m}`),
);

/** The mode of an upload path (query string ignored), or undefined for any other path. */
export function uploadModeOf(url: string | undefined): UploadMode | undefined {
  const pathname = (url ?? '').split('?')[0] ?? '';
  const m = /^\/v1(?:beta1|alpha1)\/([a-z-]+)\/?$/.exec(pathname);
  return m === null ? undefined : MODES[m[1] ?? ''];
}

/** The API group, version and resource (CDI's). */
export const UPLOAD_API = {
  group: 'upload.cdi.kubevirt.io',
  version: 'v1beta1',
  resource: 'uploadtokenrequests',
  kind: 'UploadTokenRequest',
} as const;

/**
 * Optional request header (ours) naming the PVC the client means, `namespace/name`: a token for
 * another PVC is then refused with 401 instead of uploading into the wrong volume.
 */
export const UPLOAD_TARGET_HEADER = 'x-cdi-upload-target';

/** Response header carrying the durable byte count (the tus protocol's name). */
export const UPLOAD_OFFSET_HEADER = 'upload-offset';
/** Response header carrying the announced total, when known. */
export const UPLOAD_LENGTH_HEADER = 'upload-length';
