// SPDX-License-Identifier: Apache-2.0
/**
 * Parsing of `docker://host[:port]/repo[:tag|@sha256:digest]` image references, with the rules of
 * the distribution reference grammar (`github.com/distribution/reference`): the first path
 * component is a registry host only when it holds a `.` or a `:` or is `localhost`; otherwise the
 * image lives on Docker Hub and a one-component name gets the `library/` prefix.
 */
import { CdiError, ErrorCodes } from '../../../common/errors.js';

/** The scheme CDI accepts for pod pulls (`source.registry.url`). */
export const DOCKER_SCHEME = 'docker://';

/** Docker Hub's canonical name and the host that serves its API. */
const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';
const DEFAULT_TAG = 'latest';

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^\w[\w.-]{0,127}$/;
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const HOST_RE = /^(?:[a-zA-Z0-9.-]+|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/;

/** A parsed image reference. */
export interface ImageReference {
  /** The registry as written (`host[:port]`), `docker.io` for Docker Hub. */
  readonly registry: string;
  /** The `host[:port]` that serves the `/v2/` API. */
  readonly apiHost: string;
  /** Repository path, e.g. `library/fedora` or `kubevirt/cirros-container-disk-demo`. */
  readonly repository: string;
  /** The tag, when no digest was given (`latest` by default). */
  readonly tag: string | undefined;
  /** The manifest digest, `sha256:<hex>`, when pulling by digest. */
  readonly digest: string | undefined;
}

function invalid(url: string, why: string): CdiError {
  return new CdiError(ErrorCodes.InvalidArgument, `invalid registry url "${url}": ${why}`);
}

function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

/**
 * Parses a `docker://` URL. Throws `CDI_INVALID_ARGUMENT` for other schemes (`oci-archive:` is not
 * supported) and malformed names.
 */
export function parseImageReference(url: string): ImageReference {
  if (!url.startsWith(DOCKER_SCHEME)) {
    throw invalid(url, `only ${DOCKER_SCHEME} references are supported`);
  }
  let rest = url.slice(DOCKER_SCHEME.length);
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw invalid(url, `malformed digest "${digest}"`);
  }
  let registry = DOCKER_HUB;
  const slash = rest.indexOf('/');
  if (slash > 0 && looksLikeHost(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    rest = rest.slice(slash + 1);
    if (!HOST_RE.test(registry)) throw invalid(url, `malformed registry host "${registry}"`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalid(url, `malformed tag "${tag}"`);
  }
  let repository = rest;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (!REPOSITORY_RE.test(repository)) {
    throw invalid(url, `malformed repository name "${repository}"`);
  }
  return {
    registry,
    apiHost: registry === DOCKER_HUB ? DOCKER_HUB_API : registry,
    repository,
    tag: digest === undefined ? (tag ?? DEFAULT_TAG) : undefined,
    digest,
  };
}

/** The tag or digest to ask the manifests endpoint for. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** `host/repo:tag` or `host/repo@digest`, for logs and messages. */
export function formatImageReference(ref: ImageReference): string {
  const suffix = ref.digest === undefined ? `:${ref.tag ?? DEFAULT_TAG}` : `@${ref.digest}`;
  return `${ref.registry}/${ref.repository}${suffix}`;
}

/**
 * True when the registry is listed in CDIConfig `insecureRegistries` (entries are `host[:port]`,
 * optionally with a scheme, as users write them).
 */
export function isInsecureRegistry(ref: ImageReference, insecure: readonly string[]): boolean {
  return insecure.some((entry) => {
    const host = entry
      .trim()
      .replace(/^[a-z]+:\/\//, '')
      .replace(/\/+$/, '');
    return host === ref.registry || host === ref.apiHost;
  });
}
