// SPDX-License-Identifier: Apache-2.0
/** The upload endpoints shared by the proxy and the server (CDI `pkg/common/common.go`). */

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
